package config

import (
	"testing"
	"time"
)

func TestAuditConfig(t *testing.T) {
	good := `
public_url: https://warden.example.com
audit:
  checkpoint: {every: 10, interval: 5s}
  retention: 2160h
  sinks:
    - {type: file, path: audit.jsonl}
    - {name: siem, type: webhook, url: "https://siem.example.com/in", format: ocsf, headers: {Authorization: "env:SIEM"}}
    - {type: syslog, network: udp, address: "127.0.0.1:514"}
`
	c := Default()
	if err := c.Parse("warden.yaml", []byte(good)); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a := c.Audit
	if a.Origin != "warden.example.com/audit" || a.Checkpoint.Every != 10 || time.Duration(a.Retention) != 90*24*time.Hour {
		t.Fatalf("audit: %+v", a)
	}
	file, hook, syslog := a.Sinks[0], a.Sinks[1], a.Sinks[2]
	if file.Name != "file" || file.Format != "jsonl" || file.MaxSize != 100<<20 || file.MaxFiles != 5 ||
		hook.BatchSize != 100 || time.Duration(hook.Timeout) != 10*time.Second || syslog.Facility != "local0" {
		t.Fatalf("sink defaults: %+v", a.Sinks)
	}

	for _, tc := range []struct{ yaml, err string }{
		{"audit:\n  sinks:\n    - {type: kafka}", `type "kafka"`},
		{"audit:\n  sinks:\n    - {type: file}", "path is required"},
		{"audit:\n  sinks:\n    - {type: file, path: a}\n    - {type: file, path: b}", "another sink has this name"},
		{"audit:\n  sinks:\n    - {type: webhook, url: 'ftp://x'}", "http(s) URL"},
		{"audit:\n  sinks:\n    - {type: syslog, network: tcp, address: nohost}", "HOST:PORT"},
		{"audit:\n  sinks:\n    - {type: syslog, network: tcp, address: 'h:1', facility: nope}", "facility"},
		{"audit:\n  sinks:\n    - {type: file, path: a, format: xml}", "format"},
		{"audit:\n  retention: 10m", "retention"},
		{"audit:\n  checkpoint: {every: 0}", "every"},
		{"audit:\n  origin: 'a b'", "origin"},
		{"audit:\n  sinks:\n    - {type: file, path: a, colour: red}", `unknown key "colour"`},
	} {
		t.Run(tc.err, func(t *testing.T) { checkLoad(t, tc.yaml, tc.err) })
	}
}
