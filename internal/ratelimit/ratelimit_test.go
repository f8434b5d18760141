package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestBucket(t *testing.T) {
	l := Limit{Rate: 10, Burst: 3}
	var b Bucket
	for i := range 3 {
		if !b.Allow(l, t0) {
			t.Fatalf("token %d of the burst refused", i)
		}
	}
	if b.Allow(l, t0) {
		t.Fatal("a fourth token in the same instant")
	}
	if b.Allow(l, t0.Add(50*time.Millisecond)) {
		t.Fatal("half a token was enough")
	}
	if !b.Allow(l, t0.Add(100*time.Millisecond)) {
		t.Fatal("one token after 100 ms at 10/s was refused")
	}
	// A long pause refills up to the burst, not beyond.
	n := 0
	for b.Allow(l, t0.Add(time.Hour)) {
		n++
	}
	if n != 3 {
		t.Fatalf("after an hour %d tokens, want the burst of 3", n)
	}
	// A clock that goes back takes nothing and gives nothing.
	if b.Allow(l, t0) {
		t.Fatal("a token from a clock that went back")
	}
}

func TestTable(t *testing.T) {
	tab := NewTable[string](Limit{Rate: 1, Burst: 2}, 64)
	for _, tc := range []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true}, {"a", 0, true}, {"a", 0, false}, // a's burst
		{"b", 0, true}, // b has a bucket of its own
		{"a", time.Second, true}, {"a", time.Second, false},
	} {
		if got := tab.Allow(tc.key, t0.Add(tc.at)); got != tc.want {
			t.Fatalf("Allow(%s, +%v) = %v, want %v", tc.key, tc.at, got, tc.want)
		}
	}
}

// TestTableBounded shows that a flood of new keys uses no more slots than
// the table was made with, and that a key in a busy set keeps its bucket
// while it is in use.
func TestTableBounded(t *testing.T) {
	tab := NewTable[int](Limit{Rate: 0.001, Burst: 1}, 16)
	if len(tab.slots) != 16 {
		t.Fatalf("%d slots, want 16", len(tab.slots))
	}
	if !tab.Allow(-1, t0) || tab.Allow(-1, t0) {
		t.Fatal("key -1 should have one token")
	}
	for i := range 100000 {
		tab.Allow(i, t0.Add(time.Duration(i)*time.Nanosecond))
		if i%2 == 0 && tab.Allow(-1, t0.Add(time.Duration(i)*time.Nanosecond)) {
			// -1 is used more recently than the flood's keys of its set,
			// so it keeps its empty bucket.
			t.Fatalf("key -1 got a fresh bucket after %d other keys", i)
		}
	}
	if len(tab.slots) != 16 {
		t.Fatal("the table grew")
	}
}

func TestSampler(t *testing.T) {
	s := NewSampler(1, 2)
	var got []string
	for range 5 {
		ok, n := s.Allow(t0)
		got = append(got, fmt.Sprint(ok, n))
	}
	ok, n := s.Allow(t0.Add(time.Second))
	got = append(got, fmt.Sprint(ok, n))
	want := "[true 0 true 0 false 0 false 0 false 0 true 3]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
}

func BenchmarkTableAllow(b *testing.B) {
	tab := NewTable[[6]byte](Limit{Rate: 10, Burst: 20}, 4096)
	now := t0
	for i := 0; b.Loop(); i++ {
		tab.Allow([6]byte{byte(i), byte(i >> 8), byte(i >> 16), 1, 2, 3}, now)
	}
}
