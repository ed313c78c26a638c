package bench_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/bench"
	"github.com/wardenhq/warden/internal/cli"
	"github.com/wardenhq/warden/internal/sqlite"
)

// The baselines docs/PERFORMANCE.md sets beside warden's figures, measured in the same run on
// the same machine: what the machine does for the same work without warden's logic around it.
// The machine is shared and noisy; a ratio to a baseline from the same run means more than an
// absolute figure.

// jwtLike is a token the size of warden's access tokens (a compact EdDSA JWS of ~640 bytes).
func jwtLike() string {
	b := make([]byte, 480)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// BenchmarkBaselineSHA256Token: hashing the token, which a cached verification must do to find
// it in the cache; the floor of BenchmarkVerifyTokenCached.
func BenchmarkBaselineSHA256Token(b *testing.B) {
	tok := jwtLike()
	for b.Loop() {
		sha256.Sum256([]byte(tok))
	}
}

// BenchmarkBaselineEd25519Verify: one Ed25519 signature check over a token's signing input;
// the floor of BenchmarkVerifyTokenFirst.
func BenchmarkBaselineEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	msg := []byte(jwtLike())
	sig := ed25519.Sign(priv, msg)
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
}

func reportLatency(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// BenchmarkBaselineFsync: a small write made durable with fsync, in the directory the tests'
// SQLite files live in: the floor of an audit commit.
func BenchmarkBaselineFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatency(b, lat)
}

// BenchmarkBaselineHashChain: a SHA-256 hash chain over events of an audit event's size, alone;
// the floor of verifying the log.
func BenchmarkBaselineHashChain(b *testing.B) {
	ev := []byte(`{"schema":1,"id":"01JD8X4N8M3K2V7Q9W5E6R1T0Y","seq":1,"time":"2026-01-02T15:04:05.123456789Z","type":"tool.call",` +
		`"actor":{"kind":"agent","id":"agt_01jd8x4n8m3k2v7q9w5e6r1t0y","name":"triage-bot","session_id":"s1","replica":"r1"},` +
		`"target":{"tool":"github","action":"issues.create","resource":"repo:acme/web","arguments":{"title":"x"}},` +
		`"decision":{"id":"dec_01jd8x4n8m3k2v7q9w5e6r1t0y","effect":"allow","reason":"policy_allow","policies":["triage"],"policy_version":3}}`)
	var prev [32]byte
	n := 0
	for b.Loop() {
		h := sha256.New()
		h.Write(prev[:])
		h.Write(ev)
		h.Sum(prev[:0])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Minutes(), "events/min")
}

// BenchmarkBaselineAgentUpdate: one durable update of an agent on SQLite (status and epoch), the
// store write a kill makes before anything else; the floor of BenchmarkKill's return.
func BenchmarkBaselineAgentUpdate(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "warden.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	a := &warden.Agent{ID: "agt_baseline", Name: "baseline", Owner: "a@example.com", Purpose: "baseline", Status: warden.AgentActive,
		Epoch: 1, SecretHash: []byte("x"), CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateAgent(ctx, a); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := s.UpdateAgent(ctx, a.Name, func(a *warden.Agent) error { a.Epoch++; return nil }); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	reportLatency(b, lat)
}

// BenchmarkBaselineCancel: how long a plain Go client's cancellation takes to reach an upstream
// handler over loopback; the floor of BenchmarkKill's cancellation.
func BenchmarkBaselineCancel(b *testing.B) {
	started, done := make(chan struct{}), make(chan time.Time)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
		done <- time.Now()
	}))
	defer up.Close()
	var lat []time.Duration
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", up.URL, nil)
		go func() {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		<-started
		t0 := time.Now()
		cancel()
		lat = append(lat, (<-done).Sub(t0))
	}
	reportLatency(b, lat)
}

// BenchmarkRunEndToEnd: `warden run --agent A -- true` end to end (the runner's start, its
// token, registration with the server, the sandbox built and torn down) against plain exec of
// true, interleaved so that the machine's noise falls on both. Here warden is this test binary
// (see TestMain). The sandbox's own start is cmd/warden's BenchmarkSandboxStart.
func BenchmarkRunEndToEnd(b *testing.B) {
	if os.Getuid() != 0 {
		b.Skip("sandboxes are measured as root, like their tests")
	}
	if !cli.HasCommand("run") {
		b.Skip("this warden has no `warden run`")
	}
	trueBin, err := exec.LookPath("true")
	if err != nil {
		b.Skip("no true on PATH")
	}
	s, err := bench.StartSelf(context.Background(), bench.SelfOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Stop()
	var created struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	name := "sandbox-bench"
	out := &strings.Builder{}
	env := cli.Env{Stdout: out, Stderr: &strings.Builder{}, Getenv: func(k string) string {
		return map[string]string{"WARDEN_ADDR": s.URL, "WARDEN_TOKEN": s.Token}[k]
	}}
	if err := cli.Run(context.Background(), []string{"agent", "create", name, "--owner", "bench@example.com", "--purpose", "sandbox benchmark", "--json"}, env); err != nil {
		b.Fatal(err)
	}
	if err := decodeJSON(out.String(), &created); err != nil {
		b.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ws := b.TempDir()
	runOnce := func(argv ...string) time.Duration {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = ws
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "WARDEN_ADDR=" + s.URL, "WARDEN_CLIENT_ID=" + created.ClientID, "WARDEN_CLIENT_SECRET=" + created.ClientSecret}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
		}
		return time.Since(t0)
	}
	var sandboxed, plain []time.Duration
	for b.Loop() {
		plain = append(plain, runOnce(trueBin))
		sandboxed = append(sandboxed, runOnce(exe, "run", "--agent", name, "--workspace", ws, "--", "true"))
	}
	slices.Sort(plain)
	slices.Sort(sandboxed)
	p50 := func(l []time.Duration) float64 { return float64(l[len(l)/2]) / float64(time.Millisecond) }
	b.ReportMetric(p50(sandboxed), "run-p50-ms")
	b.ReportMetric(p50(plain), "exec-p50-ms")
	b.ReportMetric(p50(sandboxed)-p50(plain), "added-p50-ms")
}

func decodeJSON(s string, v any) error {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		return fmt.Errorf("not JSON: %w: %s", err, s)
	}
	return nil
}
