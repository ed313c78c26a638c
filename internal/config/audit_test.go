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

// TestAuditRefusalsAndDisk: the limits on recording refused credentials and the disk warning
// have defaults, keep what is set (0 per source: summaries only), and refuse nonsense.
func TestAuditRefusalsAndDisk(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := AuditRefusals{PerSource: 30, Total: 300, SummaryInterval: Duration(time.Minute), MaxSources: 10_000}
	if c.Audit.Refusals != want || c.Audit.DiskWarnFree != 1<<30 {
		t.Fatalf("defaults: %+v, disk_warn_free %d", c.Audit.Refusals, c.Audit.DiskWarnFree)
	}
	c = Default()
	set := "audit:\n  refusals: {per_source: 0, total: 50, summary_interval: 10s, max_sources: 500}\n  disk_warn_free: 5GiB\n"
	if err := c.Parse("warden.yaml", []byte(set)); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want = AuditRefusals{PerSource: 0, Total: 50, SummaryInterval: Duration(10 * time.Second), MaxSources: 500}
	if c.Audit.Refusals != want || c.Audit.DiskWarnFree != 5<<30 {
		t.Fatalf("set: %+v, disk_warn_free %d", c.Audit.Refusals, c.Audit.DiskWarnFree)
	}
	for _, tc := range []struct{ yaml, err string }{
		{"audit:\n  refusals: {per_source: -1}", "audit.refusals.per_source"},
		{"audit:\n  refusals: {per_source: 1000000}", "audit.refusals.per_source"},
		{"audit:\n  refusals: {total: -5}", "audit.refusals.total"},
		{"audit:\n  refusals: {summary_interval: 0s}", "audit.refusals.summary_interval"},
		{"audit:\n  refusals: {summary_interval: 2h}", "audit.refusals.summary_interval"},
		{"audit:\n  refusals: {max_sources: 10}", "audit.refusals.max_sources"},
		{"audit:\n  refusals: {per_source: lots}", "line 2"},
		{"audit:\n  refusals: {per_ip: 5}", `unknown key "per_ip"`},
		{"audit:\n  disk_warn_free: 0", "not a size"},
		{"audit:\n  disk_warn_free: 1TB", "not a size"},
	} {
		t.Run(tc.yaml, func(t *testing.T) { checkLoad(t, tc.yaml, tc.err) })
	}
}
