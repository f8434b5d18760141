package hnetcfg

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestScanMappings(t *testing.T) {
	full := []PortMappingProps{
		{ID: "1", Name: "web", Protocol: NAT_PROTOCOL_TCP, ExternalPort: 80, InternalPort: 8080, TargetIPAddress: "192.168.137.20", Enabled: true},
		{ID: "18446744073709551615", Name: "nas", Protocol: NAT_PROTOCOL_UDP, ExternalPort: 65535, InternalPort: 1, TargetName: "nas.home.arpa", ResolvedIPAddress: "192.168.137.30", Options: 0},
		{ID: "3", Name: "game", Protocol: NAT_PROTOCOL_UDP, ExternalPort: 27015, InternalPort: 27015, TargetName: "lanhost", Unresolved: true, ApplyError: "nftables: add element: operation not permitted", Origin: OriginUser},
		{ID: "4", Name: "pcp 192.168.137.20 udp/41641", Protocol: NAT_PROTOCOL_UDP, ExternalPort: 41641, InternalPort: 41641, TargetIPAddress: "192.168.137.20", Enabled: true,
			Origin: OriginPCP, Client: "192.168.137.20", Expires: "2027-01-15T08:00:00Z"},
	}
	daemons, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		data   string
		scans  bool // taken by the scanner, not left to encoding/json
		failed bool // encoding/json refuses it too
	}{
		{"the daemon's list", string(daemons) + "\n", true, false},
		{"empty", "[]\n", true, false},
		{"spaced", " [ { \"id\" : \"1\" , \"enabled\" : true } ] ", true, false},
		{"empty object", "[{}]", true, false},
		{"escaped name", `[{"name":"a \"b\" \u003c"}]`, false, false},
		{"utf-8 name", `[{"name":"名前"}]`, false, false},
		{"other spelling", `[{"ID":"1"}]`, false, false},
		{"unknown field", `[{"id":"1","colour":"red"}]`, false, false},
		{"null", `null`, false, false},
		{"null element", `[null]`, false, false},
		{"null field", `[{"name":null}]`, false, false},
		{"float port", `[{"externalPort":80.0}]`, false, true},
		{"exponent port", `[{"externalPort":8e1}]`, false, true},
		{"leading zero", `[{"externalPort":080}]`, false, true},
		{"huge port", `[{"externalPort":99999999999999999999}]`, false, true},
		{"string port", `[{"externalPort":"80"}]`, false, true},
		{"trailing data", `[]x`, false, true},
		{"unterminated", `[{"id":"1"`, false, true},
		{"truthy", `[{"enabled":truex}]`, false, true},
		{"not a list", `{"id":"1"}`, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, scanned := scanMappings([]byte(tt.data))
			if scanned != tt.scans {
				t.Errorf("scanned = %v, want %v", scanned, tt.scans)
			}
			got, err := decodeMappings([]byte(tt.data))
			var want []PortMappingProps
			wantErr := json.Unmarshal([]byte(tt.data), &want)
			if (err != nil) != tt.failed || (wantErr != nil) != tt.failed {
				t.Fatalf("decodeMappings error %v, encoding/json's %v; want failure: %v", err, wantErr, tt.failed)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("decodeMappings = %#v, encoding/json = %#v", got, want)
			}
		})
	}
	if got, _ := scanMappings(daemons); !reflect.DeepEqual(got, full) {
		t.Errorf("the daemon's list read back as %+v", got)
	}
}

// FuzzScanMappings checks that whatever the scanner takes, as a list or as
// one mapping, encoding/json takes too and reads the same.
func FuzzScanMappings(f *testing.F) {
	f.Add([]byte(`[{"id":"1","name":"web","protocol":"tcp","externalPort":80,"internalPort":8080,"targetName":"","targetIPAddress":"10.0.0.1","enabled":true,"options":0,"unresolved":false}]`))
	f.Add([]byte(`[{"id":"2","resolvedIPAddress":"10.0.0.2","applyError":"x"},{}]`))
	f.Add([]byte(` [ ] `))
	f.Add([]byte(`{"id":"3","name":"x","enabled":false}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, ok := scanMappings(data); ok {
			var want []PortMappingProps
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("the scanner took %q, which encoding/json refuses: %v", data, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: scanner %#v, encoding/json %#v", data, got, want)
			}
		}
		if got, ok := scanMapping(data); ok {
			var want PortMappingProps
			if err := json.Unmarshal(data, &want); err != nil {
				t.Fatalf("the scanner took %q as one mapping, which encoding/json refuses: %v", data, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: scanner %#v, encoding/json %#v", data, got, want)
			}
		}
	})
}
