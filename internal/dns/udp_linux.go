//go:build linux

package dns

import (
	"bytes"
	"net/netip"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchLen is how many datagrams one system call reads or writes.
const batchLen = 64

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batch holds one read and one write of batchLen datagrams. It lives on
// the heap, as the kernel is handed pointers into it.
type batch struct {
	in    [batchLen * maxQuery]byte
	out   [batchLen * maxFastAnswer]byte
	names [batchLen]unix.RawSockaddrInet6
	iov   [batchLen]unix.Iovec
	hdrs  [batchLen]mmsghdr
	oiov  [batchLen]unix.Iovec
	ohdrs [batchLen]mmsghdr
	name  [256]byte
}

// serve reads queries with recvmmsg and sends the fast path's answers
// with sendmmsg, a batch at a time: under load, two system calls serve
// dozens of queries.
func (u *udpServer) serve() {
	defer close(u.done)
	rc, err := u.conn.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		// Room for a burst (the kernel doubles it); FORCE works as root.
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
		}
	})
	b := new(batch)
	for i := range batchLen {
		b.iov[i].Base = &b.in[i*maxQuery]
		b.iov[i].SetLen(maxQuery)
		b.hdrs[i].hdr.Iov = &b.iov[i]
		b.hdrs[i].hdr.SetIovlen(1)
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	for {
		for i := range batchLen {
			b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
			b.hdrs[i].hdr.Flags = 0
		}
		n, errno, err := mmsg(rc.Read, unix.SYS_RECVMMSG, b.hdrs[:])
		if err != nil {
			return // closed
		}
		if errno != 0 {
			if u.h.Log != nil && errno != unix.EINTR {
				u.h.Log.Debug("reading DNS queries", "err", errno)
			}
			continue
		}
		now := time.Now()
		m := 0
		for i := range n {
			h := &b.hdrs[i]
			if h.hdr.Flags&unix.MSG_TRUNC != 0 {
				continue // longer than any query
			}
			src, ok := sockaddrAddrPort(&b.names[i])
			if !ok {
				continue
			}
			pkt := b.in[i*maxQuery : i*maxQuery+int(h.n)]
			out := b.out[m*maxFastAnswer : (m+1)*maxFastAnswer]
			k, general := u.handle(pkt, src, out, b.name[:], now)
			if general {
				k = u.dispatch(bytes.Clone(pkt), src, out, b.name[:])
			}
			if k == 0 {
				continue
			}
			b.oiov[m].Base = &out[0]
			b.oiov[m].SetLen(k)
			b.ohdrs[m].hdr.Iov = &b.oiov[m]
			b.ohdrs[m].hdr.SetIovlen(1)
			b.ohdrs[m].hdr.Name = h.hdr.Name
			b.ohdrs[m].hdr.Namelen = h.hdr.Namelen
			m++
		}
		u.send(rc, b.ohdrs[:m])
	}
}

// send writes the datagrams of hdrs with sendmmsg. One that the kernel
// refuses is skipped.
func (u *udpServer) send(rc syscall.RawConn, hdrs []mmsghdr) {
	for len(hdrs) > 0 {
		sent, errno, err := mmsg(rc.Write, unix.SYS_SENDMMSG, hdrs)
		if err != nil {
			return // closed
		}
		if errno != 0 {
			if u.h.Log != nil {
				u.h.Log.Debug("writing a DNS answer", "err", errno)
			}
			sent = 1
		}
		hdrs = hdrs[sent:]
	}
}

// mmsg makes the system call trap (recvmmsg or sendmmsg) on hdrs through
// wait (a RawConn's Read or Write), which parks the goroutine until the
// socket is ready. err is set when the socket is closed.
func mmsg(wait func(func(uintptr) bool) error, trap uintptr, hdrs []mmsghdr) (n int, errno syscall.Errno, err error) {
	err = wait(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		n, errno = int(r), e
		return true
	})
	return n, errno, err
}

// sockaddrAddrPort reads a source address the kernel wrote.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&sa4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), uint16(p[0])<<8|uint16(p[1])), true
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(strconv.FormatUint(uint64(sa.Scope_id), 10))
		}
		return netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1])), true
	}
	return netip.AddrPort{}, false
}
