package apitype

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

func TestParseDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true},
		{"0d", 0, true},
		{"36500d", 36500 * 24 * time.Hour, true},
		{"36501d", 0, false}, // over a hundred years
		{"-1d", 0, false},
		{"12h", 12 * time.Hour, true},
		{"30m", 30 * time.Minute, true},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"", 0, false},
		{"forever", 0, false},
	} {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("ParseDuration(%q): %v is not invalid input", tt.in, err)
		}
	}
}

// FuzzParseDuration: any text is a duration or an invalid-input error, never a panic, and a
// number of days is never negative.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90d", "12h", "-5m", "1e9d", "9223372036854775807d", "", "d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil && warden.ErrorCode(err) != warden.EInvalid {
			t.Fatalf("ParseDuration(%q): %v", s, err)
		}
		if err == nil && len(s) > 0 && s[len(s)-1] == 'd' && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
	})
}

// TestGrantApprovalJSON: warden.yaml's approval of a grant is true, false, required or waived,
// and nothing else, in JSON as in YAML.
func TestGrantApprovalJSON(t *testing.T) {
	for in, want := range map[string]GrantApproval{`true`: ApprovalRequired, `false`: "", `"required"`: ApprovalRequired, `"waived"`: ApprovalWaived, `""`: ""} {
		var g GrantApproval
		if err := json.Unmarshal([]byte(in), &g); err != nil || g != want {
			t.Errorf("%s: %q %v; want %q", in, g, err, want)
		}
	}
	for _, in := range []string{`"maybe"`, `1`, `null`, `{}`} {
		var g GrantApproval
		if err := json.Unmarshal([]byte(in), &g); err == nil {
			t.Errorf("%s: accepted as %q", in, g)
		}
	}
}
