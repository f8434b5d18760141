package api

import (
	"fmt"
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
