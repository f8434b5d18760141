package lab_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/netshare/netshare/hnetcfg"
	"github.com/netshare/netshare/internal/lab"
)

// signedZone writes a zone signed with BIND's dnssec-signzone in dir and
// returns the signed file and a delv trust-anchor file for its KSK.
func signedZone(t *testing.T, dir string) (zone, anchors string) {
	t.Helper()
	for _, tool := range []string{"dnssec-keygen", "dnssec-signzone", "delv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (apt-get install bind9-utils bind9-dnsutils)", tool)
		}
	}
	src := filepath.Join(dir, "db.signed.test")
	must(t, os.WriteFile(src, []byte(`$ORIGIN signed.test.
$TTL 300
@    IN SOA ns.signed.test. admin.signed.test. 1 3600 600 86400 300
@    IN NS  ns.signed.test.
ns   IN A   198.51.100.3
www  IN A   198.51.100.80
`), 0o644))
	for _, args := range [][]string{
		{"dnssec-keygen", "-q", "-K", dir, "-a", "ECDSAP256SHA256", "-n", "ZONE", "signed.test"},
		{"dnssec-keygen", "-q", "-K", dir, "-a", "ECDSAP256SHA256", "-f", "KSK", "-n", "ZONE", "signed.test"},
		{"dnssec-signzone", "-S", "-K", dir, "-d", dir, "-o", "signed.test", "-f", src + ".signed", src},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "K*.key"))
	var ksk string
	for _, k := range keys {
		data, _ := os.ReadFile(k)
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			i := slices.Index(f, "DNSKEY") // NAME [TTL] IN DNSKEY FLAGS PROTO ALG KEY...
			if i > 0 && len(f) > i+4 && f[i+1] == "257" {
				ksk = fmt.Sprintf("%s static-key %s %s %s %q;", f[0], f[i+1], f[i+2], f[i+3], strings.Join(f[i+4:], ""))
			}
		}
	}
	if ksk == "" {
		t.Fatal("no KSK made")
	}
	anchors = filepath.Join(dir, "anchors.conf")
	must(t, os.WriteFile(anchors, []byte("trust-anchors {\n\t"+ksk+"\n};\n"), 0o644))
	return src + ".signed", anchors
}

// TestDNSSECThroughTheForwarder has a validating client behind the
// gateway (BIND's delv) validate a signed zone served on the wan side,
// through netshare's forwarder: the DO bit goes upstream and the DNSSEC
// records come back untouched, from the upstream and from the cache.
func TestDNSSECThroughTheForwarder(t *testing.T) {
	l, m := up(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	zone, anchors := signedZone(t, dir)
	// The wan host's own DNS server holds port 53: the zone is served on
	// another port, which the forwarder is told.
	serveZone(t, l, zone, "5353")
	_, err := m.SetDNS(ctx, hnetcfg.DNSEdit{Upstreams: []string{lab.WANHost + ":5353"}})
	must(t, err)
	for i := range 2 { // the second answer comes from the cache
		out, err := delv(l, anchors)
		if err != nil || !strings.Contains(out, "; fully validated") || !strings.Contains(out, "198.51.100.80") {
			t.Fatalf("delv, query %d: %v\n%s", i+1, err, out)
		}
	}
	out, err := l.Output(l.LAN, "dig", "@"+lab.GatewayLAN, "+dnssec", "+time=3", "+tries=1", "www.signed.test", "A")
	if err != nil || !strings.Contains(out, "RRSIG") || !flagsHave(out, "ra") {
		t.Fatalf("dig +dnssec: %v\n%s", err, out)
	}
	// A record changed on the way does not validate: delv notices, so the
	// test above would notice a forwarder that altered answers.
	bad := filepath.Join(dir, "tampered.signed")
	data, _ := os.ReadFile(zone)
	must(t, os.WriteFile(bad, []byte(strings.Replace(string(data), "198.51.100.80", "198.51.100.66", 1)), 0o644))
	serveZone(t, l, bad, "5354")
	_, err = m.SetDNS(ctx, hnetcfg.DNSEdit{Upstreams: []string{lab.WANHost + ":5354"}})
	must(t, err)
	out, _ = delv(l, anchors)
	if strings.Contains(out, "; fully validated") {
		t.Fatalf("a tampered record validated:\n%s", out)
	}
}

// delv asks netshare's forwarder, from the lan host, for www.signed.test
// with BIND's validating resolver, and returns what it says (stdout and
// stderr: delv writes its verdict to both).
func delv(l *lab.Lab, anchors string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", l.LAN, "delv", "@"+lab.GatewayLAN, "-a", anchors, "+root=signed.test", "www.signed.test", "A").CombinedOutput()
	return string(out), err
}

// serveZone serves a zone file on the wan host's port and waits until it
// answers.
func serveZone(t *testing.T, l *lab.Lab, zone, port string) {
	t.Helper()
	if _, err := l.Start(l.WAN, "zone-"+port+".log", "lab", "dns-server", "--zone", zone, "--listen", lab.WANHost+":"+port); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, _ := l.Output(l.WAN, "dig", "@"+lab.WANHost, "-p", port, "+time=1", "+tries=1", "+short", "signed.test", "SOA")
		if strings.Contains(out, "ns.signed.test.") {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(l.Dir, "zone-"+port+".log"))
			t.Fatalf("the zone server on port %s does not answer: %s", port, log)
		}
	}
}
