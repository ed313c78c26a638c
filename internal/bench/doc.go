// Package bench is `warden bench` and `warden drill`: it measures the latency warden adds and its
// throughput against the same upstream called directly and through a plain reverse proxy, and it
// runs fire drills that kill canary agents under load and check every guarantee of the kill switch.
//
// Both work through the HTTP API, against a running server on this machine or one they start in
// process (--self), and put a trivial upstream of their own on 127.0.0.1 behind it: MCP (the
// official Go SDK) and HTTP. Everything a run creates — agents, tools, a policy file, budgets —
// carries its prefix (bench-xxxxxx, drill-xxxxxx) and the label bench=true or drill=true, and is
// removed when the run ends; see fixture for how the policies in force are restored.
package bench
