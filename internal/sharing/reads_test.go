package sharing

import (
	"context"
	"testing"
	"time"

	"github.com/netshare/netshare/internal/fw"
	"github.com/netshare/netshare/internal/link"
)

// blockingFW is a firewall whose UpdateMappings waits for release.
type blockingFW struct {
	*fw.Fake
	entered, release chan struct{}
}

func (b *blockingFW) UpdateMappings(ctx context.Context, del, add []fw.Mapping) error {
	b.entered <- struct{}{}
	<-b.release
	return b.Fake.UpdateMappings(ctx, del, add)
}

// Reads never write the store, never look at the kernel, and do not wait
// for a change that is on its way to the kernel.
func TestReadsAreReads(t *testing.T) {
	h := newHarness(t)
	h.must(h.m.EnableSharing(ctx, "wan0", RolePublic, noAddr))
	p := h.add("wan0", "web", 80, "192.168.137.10")
	rev := h.m.rev

	// A new link is not recorded by a read: the link watcher's Refresh
	// records it.
	h.links.Add(link.Link{Name: "eth7", Kind: "device", Up: true, Carrier: true})
	all, err := h.m.EnumEveryConnection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if c.Interface == "eth7" {
			t.Fatal("a read listed a link the watcher had not reported")
		}
	}
	if _, err := h.m.NetConnectionProps(ctx, "eth7"); err == nil {
		t.Fatal("a read found a link the watcher had not reported")
	}
	if snap, _ := h.st.Desired.Load(ctx); snap.Rev != rev {
		t.Fatalf("reads moved the store from revision %d to %d", rev, snap.Rev)
	}
	h.m.Refresh(ctx)
	if _, err := h.m.NetConnectionProps(ctx, "eth7"); err != nil {
		t.Fatalf("after Refresh: %v", err)
	}

	// A change held up in the kernel does not hold up readers.
	b := &blockingFW{Fake: h.fw, entered: make(chan struct{}), release: make(chan struct{})}
	h.m.fw = b
	done := make(chan error, 1)
	go func() {
		_, err := h.m.EnablePortMapping(ctx, "wan0", p.ID)
		done <- err
	}()
	<-b.entered
	reads := make(chan error, 1)
	go func() {
		if _, _, err := h.m.EnumPortMappings(ctx, "wan0", MappingFilter{}); err != nil {
			reads <- err
			return
		}
		if _, err := h.m.EnumEveryConnection(ctx); err != nil {
			reads <- err
			return
		}
		_, err := h.m.PortMapping(ctx, "wan0", p.ID)
		reads <- err
	}()
	select {
	case err := <-reads:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reads waited for a change held up in the kernel")
	}
	close(b.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.m.fw = h.fw
	h.check()
}
