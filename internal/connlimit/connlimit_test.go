package connlimit

import (
	"net"
	"testing"
	"time"
)

func listen(t *testing.T, total, perSource int) *Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(ln, total, perSource)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				// Hold the connection until the client closes it.
				buf := make([]byte, 1)
				c.Read(buf)
				c.Close()
			}()
		}
	}()
	return l
}

// held reports whether a connection from the dialer stays open for a
// moment (a refused one is closed at once by the server).
func held(t *testing.T, l *Listener, local string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return c, true
	}
	c.Close()
	return nil, false
}

func TestPerSource(t *testing.T) {
	l := listen(t, 10, 2)
	var open []net.Conn
	for i := range 2 {
		c, ok := held(t, l, "127.0.0.1")
		if !ok {
			t.Fatalf("connection %d of 127.0.0.1 refused under its limit", i)
		}
		open = append(open, c)
	}
	if _, ok := held(t, l, "127.0.0.1"); ok {
		t.Fatal("a third connection from 127.0.0.1 was held")
	}
	if l.Refused() != 1 {
		t.Fatalf("refused %d, want 1", l.Refused())
	}
	// Another source still gets in.
	if c, ok := held(t, l, "127.0.0.2"); !ok {
		t.Fatal("127.0.0.2 refused")
	} else {
		c.Close()
	}
	// A slot comes back when a connection ends.
	open[0].Close()
	time.Sleep(50 * time.Millisecond)
	if c, ok := held(t, l, "127.0.0.1"); !ok {
		t.Fatal("127.0.0.1 refused after one of its connections ended")
	} else {
		c.Close()
	}
	open[1].Close()
}

func TestTotal(t *testing.T) {
	l := listen(t, 3, 3)
	var open []net.Conn
	for i := range 3 {
		c, ok := held(t, l, "127.0.0."+string(rune('1'+i)))
		if !ok {
			t.Fatalf("connection %d refused", i)
		}
		open = append(open, c)
	}
	if l.Open() != 3 {
		t.Fatalf("open %d", l.Open())
	}
	// The fourth waits in the backlog: accepted only once one ends.
	d, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	time.Sleep(100 * time.Millisecond)
	if l.Open() != 3 {
		t.Fatalf("open %d while full", l.Open())
	}
	open[0].Close()
	deadline := time.Now().Add(2 * time.Second)
	sources := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.bySource)
	}
	for l.Open() != 3 || sources() != 3 {
		if time.Now().After(deadline) {
			t.Fatal("the waiting connection was not accepted when a slot came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range open[1:] {
		c.Close()
	}
}
