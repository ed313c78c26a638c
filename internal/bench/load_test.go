package bench

import (
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var samples []time.Duration
	for i := 1000; i >= 1; i-- { // 1..1000 ms, unsorted
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	got := percentiles(samples)
	want := Latency{P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}
	if got != want {
		t.Fatalf("percentiles of 1..1000 ms: %+v, want %+v (nearest rank)", got, want)
	}
	if one := percentiles([]time.Duration{3 * time.Millisecond}); one != (Latency{3, 3, 3, 3, 3}) {
		t.Fatalf("one sample: %+v", one)
	}
	if none := percentiles(nil); none != (Latency{}) {
		t.Fatalf("no samples: %+v", none)
	}
	if d := (Latency{P50: 2, P90: 3, P99: 5, P999: 8, Max: 9}).minus(Latency{P50: 1, P90: 1, P99: 1, P999: 1, Max: 10}); d != (Latency{1, 2, 4, 7, -1}) {
		t.Fatalf("minus: %+v", d)
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"http://127.0.0.1:8787":     true,
		"http://localhost:8787":     true,
		"http://[::1]:8787":         true,
		"https://127.0.0.2":         true,
		"http://10.0.0.1:8787":      false,
		"http://warden.example.com": false,
		"127.0.0.1:8787":            false, // no scheme
		"ftp://127.0.0.1":           false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

// The extra policies name agents that do not exist: they make the set large and let nobody in.
func TestPolicyText(t *testing.T) {
	f := newFixture(nil, "bench")
	text := f.policyText([]string{f.prefix}, 5)
	if n := strings.Count(text, "permit("); n != 5 {
		t.Fatalf("%d policies, want 5:\n%s", n, text)
	}
	if strings.Count(text, `Agent::"`+f.prefix+`-`) != 4 || !strings.Contains(text, `Agent::"`+f.prefix+`"`) {
		t.Fatalf("policies:\n%s", text)
	}
}
