package api

import (
	"fmt"
	"sync/atomic"
	"testing"
)

func BenchmarkListMappings100(b *testing.B) {
	s := newServer(b)
	for i := range 100 {
		if code, body := call(s, "POST", "/v1/connections/lan0/mappings", fmt.Sprintf(`{"name":"m","protocol":"tcp","externalPort":%d,"internalPort":80,"targetIPAddress":"10.0.0.2"}`, 1000+i)); code != 201 {
			b.Fatal(body)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if code, _ := call(s, "GET", "/v1/connections/lan0/mappings", ""); code != 200 {
			b.Fatal(code)
		}
	}
}

func BenchmarkListConnections(b *testing.B) {
	s := newServer(b)
	for b.Loop() {
		if code, _ := call(s, "GET", "/v1/connections", ""); code != 200 {
			b.Fatal(code)
		}
	}
}

// BenchmarkParallelAdds adds mappings from 16 goroutines at once, through
// the handler (no socket), on a real store and the fake firewall.
func BenchmarkParallelAdds(b *testing.B) {
	s := newServer(b)
	var next atomic.Int64
	b.SetParallelism(8) // 16 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			port := 1 + next.Add(1)%65000
			if code, body := call(s, "POST", "/v1/connections/wan0/mappings", fmt.Sprintf(`{"name":"m","protocol":"tcp","externalPort":%d,"internalPort":80,"targetIPAddress":"10.0.0.2"}`, port)); code != 201 {
				b.Fatal(body)
			}
		}
	})
}
