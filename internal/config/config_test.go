package config

import (
	"strings"
	"testing"
	"time"
)

// checkLoad parses and validates yaml as warden.yaml and fails the test unless the error
// contains want, or there is none when want is "". It returns the error.
func checkLoad(t *testing.T, yaml, want string) error {
	t.Helper()
	c := Default()
	err := c.Parse("warden.yaml", []byte(yaml))
	if err == nil {
		err = c.Validate()
	}
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return nil
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
	return err
}

func TestParseAndValidate(t *testing.T) {
	cases := []struct {
		name, yaml, err string
	}{
		{"empty file", "", ""},
		{"full", "listen: 0.0.0.0:9000\ndata: /tmp/w\nstore: postgres://u@h/db\ntokens:\n  ttl: 5m\n  max_ttl: 30m\ntoken_exchange:\n  issuers:\n    - issuer: https://idp\n      jwks_file: /x\n", ""},
		{"unknown top-level key", "listen: 127.0.0.1:1\nlisten_addr: x\n", `: unknown key "listen_addr" (line 2)`},
		{"unknown nested key", "tokens:\n  tll: 5m\n", `: tokens: unknown key "tll" (did you mean "ttl"?) (line 2)`},
		{"bad duration", "tokens:\n  ttl: ten minutes\n", `tokens.ttl: "ten minutes" is not a duration (use e.g. 10m, 1h, 30s) (line 2)`},
		// A value of the wrong kind names its field and line, not a Go type.
		{"number for a mapping", "listen: 127.0.0.1:1\ntokens: 5\n", `: tokens: 5 is not a mapping (key: value lines) (line 2)`},
		{"list for a string", "token_exchange:\n  issuers:\n    - issuer: [a, b]\n", `: token_exchange.issuers[0].issuer: a list is not a string (line 3)`},
		{"word for a number", "audit:\n  refusals:\n    per_source: many\n", `: audit.refusals.per_source: "many" is not a whole number (line 3)`},
		{"several mistakes", "tokens: {ttl: 5m, tl: 1}\naudit: []\n", "tokens: unknown key \"tl\" (did you mean \"ttl\"?) (line 1)\nconfig warden.yaml: audit: a list is not a mapping (key: value lines) (line 2)"},
		{"not YAML", "tokens:\n  ttl: [5m\n", "not valid YAML: "},
		{"ttl over max", "tokens:\n  ttl: 2h\n  max_ttl: 1h\n", "over tokens.max_ttl"},
		{"max over a day", "tokens:\n  ttl: 1h\n  max_ttl: 48h\n", "at most 24h"},
		{"bad listen", "listen: nowhere\n", "want HOST:PORT"},
		{"bad store", "store: mysql://x\n", "sqlite:PATH or a postgres:// URL"},
		{"store hides password", "store: mysql://u:hunter2@h/db\n", "xxxxx"},
		{"bad public url", "public_url: ftp://x\n", "public_url"},
		{"issuer without jwks", "token_exchange:\n  issuers:\n    - issuer: https://idp\n", "exactly one of jwks_file and jwks_url"},
		{"bad log level", "log:\n  level: loud\n", "log.level"},
		{"not a mapping", "- a\n- b\n", "config"},
		{"sizes", "gateway:\n  max_request_body: 2MiB\n  max_inspect_body: 64KiB\n", ""},
		{"bad size", "gateway:\n  max_request_body: lots\n", `gateway.max_request_body: "lots" is not a size (use e.g. 65536, 64KiB, 10MiB) (line 2)`},
		{"inspect over request", "gateway:\n  max_request_body: 1KiB\n", "max_inspect_body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkLoad(t, tc.yaml, tc.err)
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatal("error shows a password")
			}
		})
	}
}

func TestDefaultsAndPrecedence(t *testing.T) {
	c := Default()
	if err := c.Parse("f", []byte("listen: 127.0.0.1:1111\ndata: fromfile\n")); err != nil {
		t.Fatal(err)
	}
	c.ApplyEnv(func(k string) string {
		return map[string]string{"WARDEN_DATA": "fromenv"}[k]
	})
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:1111" || c.Data != "fromenv" || c.Store != "sqlite:fromenv/warden.db" {
		t.Fatalf("precedence: %+v", c)
	}
	if c.PublicURL != "http://127.0.0.1:1111" || time.Duration(c.Tokens.TTL) != 10*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	c = Default()
	c.Listen = "0.0.0.0:8787"
	if err := c.Validate(); err != nil || c.PublicURL != "http://127.0.0.1:8787" {
		t.Fatalf("public url for a wildcard listen: %v %s", err, c.PublicURL)
	}
	c = Default()
	c.ApplyEnv(func(k string) string { return map[string]string{"WARDEN_REPLICA_ID": "r2"}[k] })
	if err := c.Validate(); err != nil || c.ReplicaID != "r2" {
		t.Fatalf("WARDEN_REPLICA_ID: %v %q", err, c.ReplicaID)
	}
}

// TestReplicaIDDefaultIsPerListener: replicas on one host get distinct default IDs, since the
// fleet refuses two live replicas with one ID; a configured ID stays as written.
func TestReplicaIDDefaultIsPerListener(t *testing.T) {
	ids := map[string]bool{}
	for _, listen := range []string{"127.0.0.1:8787", "127.0.0.1:8788"} {
		c := Default()
		c.Listen = listen
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
		if _, port, _ := strings.Cut(listen, ":"); !strings.HasSuffix(c.ReplicaID, ":"+port) {
			t.Errorf("listen %s: replica id %q, want the host name and :%s", listen, c.ReplicaID, port)
		}
		ids[c.ReplicaID] = true
	}
	if len(ids) != 2 {
		t.Errorf("two listeners on one host share a replica id: %v", ids)
	}
	c := Default()
	c.ReplicaID = "eu-1"
	if err := c.Validate(); err != nil || c.ReplicaID != "eu-1" {
		t.Errorf("configured replica id became %q (%v)", c.ReplicaID, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("listen: 127.0.0.1:8787\ntokens:\n  ttl: 5m\n")
	f.Add("token_exchange:\n  issuers:\n    - issuer: x\n      jwks_url: y\n")
	f.Add("{a: [1, 2, {b: c}]}")
	f.Add("&a [*a]")
	f.Add("audit:\n  refusals: {per_source: 0, total: 50, summary_interval: 10s}\n  disk_warn_free: 5GiB\n")
	f.Add("telemetry:\n  otlp_endpoint: http://127.0.0.1:4318\n  otlp_headers: {X-Key: env:K}\n  trace_sample_ratio: .nan\n")
	f.Add("telemetry:\n  metrics_listen: ':9464'\n")
	f.Fuzz(func(t *testing.T, s string) {
		c := Default()
		if err := c.Parse("fuzz", []byte(s)); err == nil {
			_ = c.Validate()
		}
	})
}

// TestClockSkewUnsetAndZero: unset keeps the default leeway; 0s is kept as zero, not taken for
// unset (issue 12 #13), and what the server hands the token service is that zero.
func TestClockSkewUnsetAndZero(t *testing.T) {
	tests := []struct {
		name, yaml, err string
		want            time.Duration
	}{
		{"unset", "", "", 30 * time.Second},
		{"zero", "tokens:\n  clock_skew: 0s\n", "", 0},
		{"set", "tokens:\n  clock_skew: 5s\n", "", 5 * time.Second},
		{"negative", "tokens:\n  clock_skew: -1s\n", "tokens.clock_skew", 0},
		{"over five minutes", "tokens:\n  clock_skew: 30m\n", "tokens.clock_skew", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := c.Parse("warden.yaml", []byte(tt.yaml))
			if err == nil {
				err = c.Validate()
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Duration(c.Tokens.ClockSkew); got != tt.want {
				t.Fatalf("clock_skew = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestChanged(t *testing.T) {
	a, b := Default(), Default()
	if got := a.Changed(&b); len(got) != 0 {
		t.Fatalf("no change: %v", got)
	}
	b.Log.Level = "debug"
	b.Approvals.Webhooks = []ApprovalWebhook{{URL: "https://hooks.example/x"}}
	b.Flow.SessionIdle = Duration(time.Hour)
	if got := strings.Join(a.Changed(&b), " "); got != "log.level approvals flow" {
		t.Fatalf("changed %q", got)
	}
}
