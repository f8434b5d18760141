package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/vishvananda/netlink"
)

// DHCPClient keeps a DHCP lease on iface, in the namespace it runs in:
// it configures the address and the default route of each lease, renews
// at half the lease time, and starts over when the server says no. It
// writes a line to w for each lease and runs until ctx is done.
func DHCPClient(ctx context.Context, iface, hostname string, w io.Writer) error {
	link, err := netlink.LinkByName(iface)
	if err != nil {
		return err
	}
	c, err := nclient4.New(iface, nclient4.WithTimeout(2*time.Second), nclient4.WithRetry(3))
	if err != nil {
		return err
	}
	defer c.Close()
	mods := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptHostName(hostname))}
	var lease *nclient4.Lease
	var current *netlink.Addr
	for ctx.Err() == nil {
		if lease == nil {
			lease, err = c.Request(ctx, mods...)
		} else {
			lease, err = c.Renew(ctx, lease, mods...)
		}
		if err != nil {
			fmt.Fprintf(w, "no lease: %v\n", err)
			lease = nil
			time.Sleep(time.Second)
			continue
		}
		ack := lease.ACK
		ones, _ := net.IPMask(ack.SubnetMask()).Size()
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: ack.YourIPAddr, Mask: net.CIDRMask(ones, 32)}}
		if current == nil || !current.Equal(*addr) {
			if current != nil {
				netlink.AddrDel(link, current)
			}
			if err := netlink.AddrReplace(link, addr); err != nil {
				return fmt.Errorf("configuring %s: %w", addr, err)
			}
			current = addr
			if r := ack.Router(); len(r) > 0 {
				netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: r[0], Dst: nil})
			}
		}
		lt := ack.IPAddressLeaseTime(time.Hour)
		fmt.Fprintf(w, "lease %s/%d router %v dns %v domain %q for %v\n", ack.YourIPAddr, ones, ack.Router(), ack.DNS(), ack.DomainName(), lt)
		select {
		case <-ctx.Done():
		case <-time.After(lt / 2):
		}
	}
	if lease != nil {
		c.Release(lease)
	}
	return nil
}
