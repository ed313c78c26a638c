package warden

import (
	"strings"
	"testing"
)

// TestCheckReason: a change to a containment needs a reason; elsewhere one is optional; either
// way it is trimmed and bounded.
func TestCheckReason(t *testing.T) {
	for _, tc := range []struct {
		reason      string
		containment bool
		want        string
		ok          bool
	}{
		{"", true, "", false},
		{"   ", true, "", false},
		{" INC-123 ", true, "INC-123", true},
		{"", false, "", true},
		{strings.Repeat("x", MaxReason+1), false, "", false},
		{"\xff", true, "", false},
	} {
		got, err := CheckReason(tc.reason, tc.containment)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("CheckReason(%q, %v) = %q, %v", tc.reason, tc.containment, got, err)
		}
		if err != nil && ErrorCode(err) != EInvalid {
			t.Errorf("CheckReason(%q): code %s", tc.reason, ErrorCode(err))
		}
	}
}
