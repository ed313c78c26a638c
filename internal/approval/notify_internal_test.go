package approval

import (
	"testing"

	"github.com/wardenhq/warden/internal/redact"
)

// A webhook URL in a log line shows its scheme and host only: the path, the user info and the
// query may each carry the receiver's secret.
func TestRedactedURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T0/B0/secret": "https://hooks.slack.com/…",
		"https://user:pw@hooks.example.com/x":           "https://hooks.example.com/…",
		"https://hooks.example.com?token=secret":        "https://hooks.example.com/…",
		"https://hooks.example.com:8443":                "https://hooks.example.com:8443/…",
		"not a url with secret":                         redact.Marker,
	} {
		if got := redactedURL(in); got != want {
			t.Errorf("redactedURL(%q) = %q, want %q", in, got, want)
		}
	}
}
