package warden

import (
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// TestNewIDIsALowercaseULID pins the format of every ID warden hands out: prefix, then a ULID
// that the reference implementation parses back to the time it was made.
func TestNewIDIsALowercaseULID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		before := time.Now().UnixMilli()
		id := NewID("dec_")
		after := time.Now().UnixMilli()
		rest, ok := strings.CutPrefix(id, "dec_")
		if !ok || strings.ToLower(id) != id || seen[id] {
			t.Fatalf("%q: want dec_ and a new lowercase ULID", id)
		}
		u, err := ulid.ParseStrict(strings.ToUpper(rest))
		if err != nil {
			t.Fatalf("%q: %v", id, err)
		}
		if ms := int64(u.Time()); ms < before || ms > after {
			t.Fatalf("%q holds the time %d; want %d to %d", id, ms, before, after)
		}
		seen[id] = true
	}
	long := strings.Repeat("x", 60) + "_"
	if id := NewID(long); !strings.HasPrefix(id, long) || len(id) != len(long)+ulid.EncodedSize {
		t.Fatalf("long prefix: %q", id)
	}
}

// TestEncodeULIDMatchesTheReference compares the encoding bit for bit with oklog/ulid, which
// warden used before, so that IDs made before and after sort and read alike.
func TestEncodeULIDMatchesTheReference(t *testing.T) {
	cases := []struct {
		ms      uint64
		entropy [10]byte
	}{
		{0, [10]byte{}},
		{1<<48 - 1, [10]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{1_796_000_000_123, [10]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{0x0123456789ab, [10]byte{0x80, 0x01, 0x7f, 0xfe, 0x10, 0x20, 0x40, 0x08, 0x04, 0x02}},
	}
	for _, c := range cases {
		var ref ulid.ULID
		if err := ref.SetTime(c.ms); err != nil {
			t.Fatal(err)
		}
		copy(ref[6:], c.entropy[:])
		var got [ulidLen]byte
		encodeULID(&got, c.ms, &c.entropy)
		if want := strings.ToLower(ref.String()); string(got[:]) != want {
			t.Errorf("ms %d entropy %x: %s; want %s", c.ms, c.entropy, got, want)
		}
	}
}

func BenchmarkNewID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = NewID("dec_")
	}
}
