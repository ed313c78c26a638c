package server_test

import (
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/config"
)

// TestClockSkewZeroRefusesExpiredToken follows tokens.clock_skew: 0s from the configuration to
// the token service (issue 12 #13): it used to become 30s there, so a token lived half a
// minute past its exp.
func TestClockSkewZeroRefusesExpiredToken(t *testing.T) {
	in := start(t, t.TempDir(), func(cfg *config.Config) {
		cfg.Tokens.TTL = config.Duration(time.Second)
		cfg.Tokens.ClockSkew = 0
	})
	c := createAgent(t, in, "bot")
	tok := in.mustToken(c.ClientID, c.ClientSecret)
	if r := in.self(tok); r.status != 200 {
		t.Fatalf("fresh token refused: %d %s", r.status, r.body)
	}
	// exp is the issue second plus one: two seconds from now it has passed by at least one.
	time.Sleep(2 * time.Second)
	if r := in.self(tok); r.status != 401 {
		t.Fatalf("a token past its exp with clock_skew 0 got %d %s, want 401", r.status, r.body)
	}
}
