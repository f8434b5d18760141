package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/netshare/netshare/internal/natpmp"
)

// PMPJob is one task of the bench's NAT-PMP load generator, run from a
// client namespace by "netshare bench pmp-client". Every server is driven
// by this same generator, which speaks RFC 6886 as any client does: one
// socket per client address, one request outstanding on each, a reply
// matched by opcode and internal port, a request sent again after
// Timeout.
type PMPJob struct {
	Server netip.AddrPort `json:"server"`
	// Mode is what to do:
	//   - fill: N mappings, spread over Sources, each asking for the
	//     public port equal to its internal port, from Port on, one
	//     request at a time (a server whose requests cost more with N
	//     would drown in the retries of many clients: filling is setup,
	//     not a measurement);
	//   - latency: N mappings asked one after the other from Sources[0],
	//     each timed, then deleted (not timed);
	//   - load: every source maps its port, then renews it, for Duration,
	//     then deletes it;
	//   - expire: N mappings from Sources[0] with Lifetime, each reported
	//     with the time its answer came;
	//   - address: the public address, asked until the server answers
	//     (for at most Duration, 10 s if 0).
	Mode     string        `json:"mode"`
	Sources  []netip.Addr  `json:"sources"`
	N        int           `json:"n"`
	Port     uint16        `json:"port"`
	TCP      bool          `json:"tcp,omitempty"`
	Lifetime uint32        `json:"lifetime"`
	Duration time.Duration `json:"duration,omitempty"`
	Timeout  time.Duration `json:"timeout"`
}

// PMPReport is what a job measured.
type PMPReport struct {
	// Latencies are the times from request to answer, in microseconds
	// (latency).
	Latencies []float64 `json:"latencies_us,omitempty"`
	// OK are the answers with result 0; Refused those with another
	// result; Lost the requests that timed out (load, fill).
	OK, Refused, Lost int64
	Seconds           float64 `json:"seconds"`
	// Leases are the mappings made (expire).
	Leases []PMPLease `json:"leases,omitempty"`
}

// PMPLease is a mapping a server granted.
type PMPLease struct {
	External uint16 `json:"external"`
	// Answered is when the answer came (Unix nanoseconds); the mapping
	// ends Lifetime seconds after it.
	Answered int64  `json:"answered"`
	Lifetime uint32 `json:"lifetime"`
}

// pmpConn is one client's socket.
type pmpConn struct {
	c       *net.UDPConn
	server  netip.AddrPort
	timeout time.Duration
	buf     []byte
}

func dialPMP(src netip.Addr, server netip.AddrPort, timeout time.Duration) (*pmpConn, error) {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
	if err != nil {
		return nil, fmt.Errorf("client %v: %w", src, err)
	}
	return &pmpConn{c: c, server: server, timeout: timeout, buf: make([]byte, 64)}, nil
}

var errLost = errors.New("no answer")

// do sends one request and waits for its answer, or errLost after the
// timeout. Answers to earlier requests are skipped.
func (p *pmpConn) do(req natpmp.Request) (natpmp.Response, error) {
	if _, err := p.c.WriteToUDPAddrPort(natpmp.AppendRequest(nil, req), p.server); err != nil {
		return natpmp.Response{}, err
	}
	deadline := time.Now().Add(p.timeout)
	p.c.SetReadDeadline(deadline)
	for {
		n, from, err := p.c.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				return natpmp.Response{}, errLost
			}
			return natpmp.Response{}, err
		}
		if from != p.server {
			continue
		}
		r, err := natpmp.ParseResponse(p.buf[:n])
		if err != nil || r.Opcode != req.Opcode || (req.Opcode != natpmp.OpExternalAddress && r.InternalPort != req.InternalPort) {
			continue
		}
		return r, nil
	}
}

// must asks until an answer comes (at most tries times) and refuses a
// result other than success.
func (p *pmpConn) must(req natpmp.Request, tries int) (natpmp.Response, error) {
	for range tries {
		r, err := p.do(req)
		if errors.Is(err, errLost) {
			continue
		}
		if err != nil {
			return r, err
		}
		if r.Result != natpmp.Success {
			return r, fmt.Errorf("port %d: %v", req.InternalPort, r.Result)
		}
		return r, nil
	}
	return natpmp.Response{}, fmt.Errorf("port %d: no answer to %d tries", req.InternalPort, tries)
}

func (j *PMPJob) mapReq(port uint16, lifetime uint32) natpmp.Request {
	op := natpmp.OpMapUDP
	if j.TCP {
		op = natpmp.OpMapTCP
	}
	return natpmp.Request{Opcode: op, InternalPort: port, SuggestedPort: port, Lifetime: lifetime}
}

// RunPMP carries out a job.
func RunPMP(j PMPJob) (*PMPReport, error) {
	if len(j.Sources) == 0 || !j.Server.IsValid() {
		return nil, errors.New("a job needs a server and one source or more")
	}
	if j.Timeout <= 0 {
		j.Timeout = time.Second
	}
	conns := make([]*pmpConn, len(j.Sources))
	for i, src := range j.Sources {
		c, err := dialPMP(src, j.Server, j.Timeout)
		if err != nil {
			return nil, err
		}
		defer c.c.Close()
		conns[i] = c
	}
	rep := &PMPReport{}
	start := time.Now()
	defer func() { rep.Seconds = time.Since(start).Seconds() }()
	switch j.Mode {
	case "fill":
		// Port Port+k from client k mod len(Sources).
		for k := range j.N {
			if _, err := conns[k%len(conns)].must(j.mapReq(j.Port+uint16(k), j.Lifetime), 3); err != nil {
				return nil, err
			}
		}
		rep.OK = int64(j.N)
		return rep, nil
	case "latency":
		c := conns[0]
		for k := range j.N {
			req := j.mapReq(j.Port+uint16(k), j.Lifetime)
			t0 := time.Now()
			r, err := c.do(req)
			d := time.Since(t0)
			switch {
			case errors.Is(err, errLost):
				rep.Lost++
				continue
			case err != nil:
				return nil, err
			case r.Result != natpmp.Success:
				return nil, fmt.Errorf("port %d: %v", req.InternalPort, r.Result)
			}
			rep.OK++
			rep.Latencies = append(rep.Latencies, float64(d.Nanoseconds())/1000)
		}
		for k := range j.N {
			if _, err := c.must(j.mapReq(j.Port+uint16(k), 0), 3); err != nil {
				return nil, fmt.Errorf("deleting: %w", err)
			}
		}
		return rep, nil
	case "load":
		var ok, refused, lost atomic.Int64
		ctx, cancel := context.WithTimeout(context.Background(), j.Duration)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, len(conns))
		for i, c := range conns {
			wg.Go(func() {
				req := j.mapReq(j.Port+uint16(i), j.Lifetime)
				for ctx.Err() == nil {
					r, err := c.do(req)
					switch {
					case errors.Is(err, errLost):
						lost.Add(1)
					case err != nil:
						errs[i] = err
						return
					case r.Result != natpmp.Success:
						refused.Add(1)
					default:
						ok.Add(1)
					}
				}
			})
		}
		wg.Wait()
		rep.OK, rep.Refused, rep.Lost = ok.Load(), refused.Load(), lost.Load()
		rep.Seconds = time.Since(start).Seconds()
		// The deletes, one at a time, waiting longer: a slow server may
		// still be working through the load's requests.
		for i, c := range conns {
			c.timeout = 5 * time.Second
			if _, err := c.must(j.mapReq(j.Port+uint16(i), 0), 6); err != nil {
				errs = append(errs, fmt.Errorf("deleting: %w", err))
			}
		}
		return rep, errors.Join(errs...)
	case "address":
		if j.Duration <= 0 {
			j.Duration = 10 * time.Second
		}
		for deadline := time.Now().Add(j.Duration); time.Now().Before(deadline); {
			r, err := conns[0].do(natpmp.Request{Opcode: natpmp.OpExternalAddress})
			if errors.Is(err, errLost) {
				continue
			}
			if err != nil {
				return nil, err
			}
			if r.Result != natpmp.Success {
				return nil, fmt.Errorf("public address: %v", r.Result)
			}
			rep.OK = 1
			return rep, nil
		}
		return nil, fmt.Errorf("public address: no answer within %v", j.Duration)
	case "expire":
		c := conns[0]
		for k := range j.N {
			r, err := c.must(j.mapReq(j.Port+uint16(k), j.Lifetime), 10)
			if err != nil {
				return nil, err
			}
			rep.Leases = append(rep.Leases, PMPLease{External: r.MappedPort, Answered: time.Now().UnixNano(), Lifetime: r.Lifetime})
		}
		rep.OK = int64(j.N)
		return rep, nil
	}
	return nil, fmt.Errorf("mode %q: use fill, latency, load, expire or address", j.Mode)
}

// clientAddrs returns n addresses from first on.
func clientAddrs(first netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for a := first; len(out) < n; a = a.Next() {
		out = append(out, a)
	}
	return slices.Clip(out)
}
