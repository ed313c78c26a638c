package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/budget"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/metrics"
	"github.com/wardenhq/warden/internal/pgtest"
	"github.com/wardenhq/warden/internal/postgres"
	"github.com/wardenhq/warden/internal/sqlite"
	"github.com/wardenhq/warden/internal/taint"
)

// memoryAudit keeps events in memory: it isolates the pipeline's own cost from the durable write,
// which the audit package's benchmarks measure.
type memoryAudit struct {
	mu        sync.Mutex
	evs       []*warden.AuditEvent
	lastLater bool // the last event came by AppendLater
}

func (m *memoryAudit) Append(ctx context.Context, ev *warden.AuditEvent) error {
	return m.append(ev, false)
}

// AppendLater is audit.Log's: for an event no action waits on.
func (m *memoryAudit) AppendLater(ctx context.Context, ev *warden.AuditEvent) error {
	return m.append(ev, true)
}

func (m *memoryAudit) append(ev *warden.AuditEvent, later bool) error {
	m.mu.Lock()
	m.lastLater = later
	m.evs = append(m.evs, ev)
	if len(m.evs) > 10000 {
		m.evs = m.evs[:0]
	}
	m.mu.Unlock()
	return nil
}

type budgetAdapter struct{ b *budget.Budgets }

func (a budgetAdapter) Consume(agent, tool, action string, args map[string]any, now time.Time) (func(), float64, *gateway.BudgetDenial, error) {
	release, burn, d, err := a.b.Charge(context.Background(), budget.Usage{Agent: agent, Tool: tool, Action: action, Args: args, Now: now})
	if d != nil {
		return release, 0, &gateway.BudgetDenial{Reason: d.Reason, Message: d.Message, RetryAfter: d.RetryAfter}, err
	}
	return release, burn, nil, err
}

type noSecrets struct{}

func (noSecrets) SecretValue(context.Context, string) (string, error) { return "s3cret-value", nil }

// pipelineEnv is a real pipeline: SQLite store, identity service, registry with policies, budgets.
type pipelineEnv struct {
	gw    *gateway.Pipeline
	token string
	agent string // the agent's id
	store *sqlite.Store
	reg   *gateway.Registry
	// policies is the Cedar text of the policy set in force.
	policies string
}

func newPipelineEnv(tb testing.TB, policies int, withBudgets bool) *pipelineEnv {
	tb.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := sqlite.OpenLog(ctx, filepath.Join(tb.TempDir(), "w.db"), log)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	now := time.Now().UTC()
	secret, hash := identity.NewSecret("wsec_")
	agent := &warden.Agent{ID: warden.NewID("agt_"), Name: "bench-bot", Owner: "a@example.com", Purpose: "bench",
		Status: warden.AgentActive, Epoch: 1, SecretHash: hash, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := store.CreateAgent(ctx, agent); err != nil {
		tb.Fatal(err)
	}
	// A payment's answer is a confirmation, not text from outside: its output is labelled
	// trusted, so deciding it adds nothing to the session (BenchmarkPipelineFlow measures the
	// decision, not the observation of an output).
	tool := &warden.Tool{Name: "api", Kind: warden.ToolHTTP, URL: "http://127.0.0.1:1", Risk: warden.RiskMedium,
		Routes:       []string{"POST /pay -> payments.send", "GET /items/{id} -> items.get item:{id}"},
		ActionLabels: map[string]map[string]string{"payments.send": {warden.LabelOutput: warden.OutputTrusted}},
		CreatedAt:    now, UpdatedAt: now}
	if err := store.CreateTool(ctx, tool); err != nil {
		tb.Fatal(err)
	}
	// Pinned manifests, as an MCP server's tools have (issue 15): every call looks its pin up
	// among 100 (the lookup is the same whatever the tool's kind).
	for i := range 100 {
		name := fmt.Sprintf("tool-%d", i)
		if i == 0 {
			name = "payments.send"
		}
		m := &warden.ToolManifest{Tool: "api", Name: name, State: warden.ManifestPinned, Digest: fmt.Sprintf("sha256:%064x", i),
			Manifest: []byte(`{"name":"` + name + `"}`), FirstSeen: now}
		if err := store.PutToolManifest(ctx, m); err != nil {
			tb.Fatal(err)
		}
	}
	// Policies for many agents, as a large installation has; one of them grants the bench agent.
	var b strings.Builder
	for i := 0; i < policies-1; i++ {
		fmt.Fprintf(&b, "permit(principal == Agent::\"agent-%d\", action == Action::\"api:items.get\", resource);\n", i)
	}
	b.WriteString(`permit(principal == Agent::"bench-bot", action in [Action::"api:payments.send", Action::"api:items.get"], resource) when { !(context.args has amount) || context.args.amount <= 100 };` + "\n")
	if err := store.CreatePolicySet(ctx, &warden.PolicySet{Files: map[string]string{"p.cedar": b.String()}, CreatedAt: now}, -1); err != nil {
		tb.Fatal(err)
	}
	master := make([]byte, 32)
	kill := killswitch.NewState()
	ids, err := identity.New(ctx, store, master, identity.Config{Issuer: "http://127.0.0.1:8787", Kill: kill}, log)
	if err != nil {
		tb.Fatal(err)
	}
	issued, err := ids.Issue(ctx, agent, identity.IssueRequest{})
	if err != nil {
		tb.Fatal(err)
	}
	_ = secret
	reg := gateway.NewRegistry(store, log)
	reg.Kill = kill
	if err := reg.Load(ctx); err != nil {
		tb.Fatal(err)
	}
	gw := &gateway.Pipeline{Registry: reg, Tokens: ids, Kill: kill, Secrets: noSecrets{}, Audit: &memoryAudit{}, Log: log}
	if withBudgets {
		bs, err := budget.New(ctx, store, log, budget.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		for _, spec := range []string{"rate 1000000000/second", "quota 1000000000000/day"} {
			bud, err := budget.ParseSpec("bench-bot", "api", "", spec)
			if err != nil {
				tb.Fatal(err)
			}
			if err := bs.Put(ctx, bud); err != nil {
				tb.Fatal(err)
			}
		}
		bud, _ := budget.ParseSpec("bench-bot", "api", "payments.send", "sum amount 1000000000000/day")
		if err := bs.Put(ctx, bud); err != nil {
			tb.Fatal(err)
		}
		gw.Budgets = budgetAdapter{bs}
	}
	return &pipelineEnv{gw: gw, token: issued.Token, agent: agent.ID, store: store, reg: reg, policies: b.String()}
}

// decide runs the pipeline for one call as an entry point does: authenticate, authorize, done.
func (e *pipelineEnv) decide(tb testing.TB, req *http.Request, call *gateway.Call) {
	c, err := e.gw.Authenticate(req)
	if err != nil {
		tb.Fatal(err)
	}
	p := e.gw.Authorize(req.Context(), c, call)
	if !p.Allowed() {
		tb.Fatalf("denied: %+v", p.Decision)
	}
	p.Done(gateway.Outcome{Status: warden.StatusOK})
}

// measure times b.N decisions of call after one that warms the token cache, and reports the
// p50 and p99 per call.
func (e *pipelineEnv) measure(b *testing.B, call *gateway.Call) {
	req := httptest.NewRequest("POST", "/v1/authorize", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	e.decide(b, req, call)
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		e.decide(b, req, call)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1000, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1000, "p99-µs")
}

// BenchmarkPipeline measures one decision in process with a cached token: authenticate, kill
// state, resolve, Cedar policy among N policies, budgets (rate, quota and a sum), the audit event
// built and handed to an in-memory log, and the outcome. It reports p50 and p99 per call.
func BenchmarkPipeline(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		for _, withBudgets := range []bool{false, true} {
			b.Run(fmt.Sprintf("policies=%d/budgets=%v", n, withBudgets), func(b *testing.B) {
				e := newPipelineEnv(b, n, withBudgets)
				e.measure(b, &gateway.Call{Entry: gateway.EntryAuthorize, Tool: "api", Action: "payments.send", Arguments: []byte(`{"amount": 42, "to": "acct-1"}`)})
			})
		}
	}
}

// BenchmarkPipelineMetrics is BenchmarkPipeline's decision (1,000 policies, budgets on) without
// and with the Prometheus metrics observing it (internal/metrics): what /metrics costs a call.
func BenchmarkPipelineMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("metrics=%v", on), func(b *testing.B) {
			e := newPipelineEnv(b, 1000, true)
			if on {
				e.gw.Observer = metrics.New()
			}
			e.measure(b, &gateway.Call{Entry: gateway.EntryAuthorize, Tool: "api", Action: "payments.send", Arguments: []byte(`{"amount": 42, "to": "acct-1"}`)})
		})
	}
}

// BenchmarkPipelineShadow is BenchmarkPipeline's decision (1,000 policies, budgets on) without
// a candidate policy set, and with one that decides every call otherwise (a forbid added), so
// that each call is decided twice and its difference queued for the audit log (drained by
// Shadow.Run into an in-memory log): what shadow mode costs a call at worst.
func BenchmarkPipelineShadow(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("shadow=%v", on), func(b *testing.B) {
			e := newPipelineEnv(b, 1000, true)
			if on {
				candidate := e.policies + `forbid(principal, action == Action::"api:payments.send", resource) when { context.args has amount && context.args.amount > 10 };` + "\n"
				if err := e.store.PutPolicyShadow(b.Context(), &warden.PolicyShadow{Files: map[string]string{"p.cedar": candidate}, CreatedAt: time.Now()}); err != nil {
					b.Fatal(err)
				}
				if err := e.reg.Load(b.Context()); err != nil {
					b.Fatal(err)
				}
				e.gw.Shadow = gateway.NewShadow(&memoryAudit{}, slog.New(slog.DiscardHandler), nil, nil, 0)
				ctx, cancel := context.WithCancel(b.Context())
				done := make(chan struct{})
				go func() { defer close(done); _ = e.gw.Shadow.Run(ctx) }()
				b.Cleanup(func() { cancel(); <-done })
			}
			e.measure(b, &gateway.Call{Entry: gateway.EntryAuthorize, Tool: "api", Action: "payments.send", Arguments: []byte(`{"amount": 42, "to": "acct-1"}`)})
			if on {
				if st := e.gw.Shadow.Stats(); st.Diffs == 0 || st.Diffs != st.Compared {
					b.Fatalf("stats %+v: every call must differ", st)
				}
			}
		})
	}
}

// untrustedMail is the n-th of a deterministic stream of realistic untrusted mails: senders,
// recipients, IBANs, account numbers, amounts, links and quoted phrases among ordinary prose.
func untrustedMail(n int) string {
	return fmt.Sprintf(`From: "Supplier %[1]d" <billing%[1]d@supplier%[2]d.example>
To: accounts@acme.example
Subject: Invoice INV-%06[1]d overdue

Dear customer, our records show invoice INV-%06[1]d of EUR %[3]d,%02[4]d.50 is still open. Please transfer
the amount to IBAN DE%02[5]d 5001 0517 %04[6]d %04[7]d %02[8]d or call +49 30 %08[9]d. Details are at
https://portal.supplier%[2]d.example/invoices/%[1]d?ref=mail and the remittance note must read "order %[1]d for acme".
Regards, the billing team at supplier%[2]d (account %010[10]d).
`, n, n%97, 1+n%9, n%1000, 10+n%89, n%10000, (n*7)%10000, n%100, 10000000+n, 1000000000+n*13)
}

// BenchmarkPipelineFlow measures what flow facts add to a decision: the same call with no flow
// state at all, in a fresh session, and in a session that read 1 MiB of untrusted output (its
// value index full); the arguments carry a recipient, an IBAN, an amount, a subject and a body.
// It reports p50 and p99 per call.
func BenchmarkPipelineFlow(b *testing.B) {
	args := []byte(`{"amount": 42, "to": "alice@acme.example", "iban": "GB33BUKB20201555555555", "subject": "Quarterly report",
		"body": "Hello Alice, please find the quarterly report attached. The numbers look good and the team did a great job this quarter. Let me know if you have questions about the forecast or the budget lines.", "url": "https://intranet.acme.example/reports/q3"}`)
	for _, state := range []string{"none", "fresh", "1MiB", "1MiB-postgres"} {
		b.Run("session="+state, func(b *testing.B) {
			e := newPipelineEnv(b, 1, false)
			call := &gateway.Call{Entry: gateway.EntryAuthorize, Tool: "api", Action: "payments.send", Arguments: args, Session: "bench-session"}
			var skew atomic.Int64 // how far the flow state's clock runs ahead
			switch state {
			case "none":
			case "1MiB-postgres":
				// A fleet's replica: the session's observations are read back from PostgreSQL
				// before every decision (taint.Sessions.Load).
				store, err := postgres.Open(context.Background(), pgtest.Database(b))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { store.Close() })
				// Measured once the observations have settled (taint's settle window): an
				// observation younger than that is read again by each decision.
				e.gw.Flow = taint.New(taint.Config{Store: store, Shared: true, Key: []byte("bench-key-0123456789")},
					func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
			default:
				e.gw.Flow = taint.New(taint.Config{}, nil)
			}
			if strings.HasPrefix(state, "1MiB") {
				untrusted := warden.FlowLabels{Output: warden.FlowLabel{Value: warden.OutputUntrusted}}
				key := taint.Key{Agent: e.agent, Session: "bench-session"}
				for n, size := 0, 0; size < 1<<20; n++ {
					m := untrustedMail(n)
					if err := e.gw.Flow.Record(context.Background(), key, taint.Source{Tool: "mail", Action: "read", Decision: fmt.Sprint("dec_", n)}, untrusted, m); err != nil {
						b.Fatal(err)
					}
					size += len(m)
				}
				skew.Store(int64(time.Minute))
			}
			e.measure(b, call)
		})
	}
}

func TestPipelineEnv(t *testing.T) {
	e := newPipelineEnv(t, 10, true)
	req := httptest.NewRequest("POST", "/v1/authorize", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	e.decide(t, req, &gateway.Call{Tool: "api", Action: "payments.send", Arguments: []byte(`{"amount": 42}`)})
	c, _ := e.gw.Authenticate(req)
	if p := e.gw.Authorize(context.Background(), c, &gateway.Call{Tool: "api", Action: "payments.send", Arguments: []byte(`{"amount": 420}`)}); p.Allowed() {
		t.Fatal("an argument over the policy's limit was allowed")
	}
}

// The audit event of a call carries the arguments redacted, and the digest of the canonical
// unredacted arguments (json.Marshal of the decoded object: sorted keys, numbers as written).
func TestCallEventArguments(t *testing.T) {
	e := newPipelineEnv(t, 1, false)
	audit := e.gw.Audit.(*memoryAudit)
	req := httptest.NewRequest("POST", "/v1/authorize", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	for _, c := range []struct{ raw, record string }{
		{`{"to": "acct-1", "rate": 1.50, "amount": 42}`, `{"amount":42,"rate":1.50,"to":"acct-1"}`},
		{`{"amount": 1, "password": "hunter2", "note": "<b>&"}`, `{"amount":1,"note":"\u003cb\u003e\u0026","password":"[REDACTED]"}`},
	} {
		audit.evs = audit.evs[:0]
		e.decide(t, req, &gateway.Call{Tool: "api", Action: "payments.send", Arguments: []byte(c.raw)})
		ev := audit.evs[0]
		if string(ev.Target.Arguments) != c.record {
			t.Errorf("%s: recorded %s, want %s", c.raw, ev.Target.Arguments, c.record)
		}
		args, err := gateway.DecodeArguments([]byte(c.raw))
		if err != nil {
			t.Fatal(err)
		}
		canonical, _ := json.Marshal(args)
		if sum := sha256.Sum256(canonical); ev.Target.ArgsSHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: args_sha256 %s is not the digest of %s", c.raw, ev.Target.ArgsSHA256, canonical)
		}
	}
}

// End releases the call at once — a kill finds nothing of it in flight and its context is done —
// and leaves the outcome's record to the caller; Done afterwards does nothing.
func TestPermitEndReleasesBeforeTheRecord(t *testing.T) {
	e := newPipelineEnv(t, 1, false)
	audit := e.gw.Audit.(*memoryAudit)
	req := httptest.NewRequest("POST", "/v1/authorize", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	c, err := e.gw.Authenticate(req)
	if err != nil {
		t.Fatal(err)
	}
	p := e.gw.Authorize(req.Context(), c, &gateway.Call{Tool: "api", Action: "items.get"})
	if !p.Allowed() {
		t.Fatalf("denied: %+v", p.Decision)
	}
	audit.evs = audit.evs[:0]
	record := p.End(gateway.Outcome{Status: warden.StatusOK})
	if record == nil || p.Ctx.Err() == nil || len(audit.evs) != 0 {
		t.Fatalf("after End: record %v, ctx %v, %d events; want a record to run, a done context, no event yet", record != nil, p.Ctx.Err(), len(audit.evs))
	}
	if n := e.gw.CancelAgent(c.Agent.ID); n != 0 {
		t.Fatalf("a kill after End cancels %d calls; want 0", n)
	}
	record()
	if len(audit.evs) != 1 || audit.evs[0].Type != warden.EventToolResult || !audit.lastLater {
		t.Fatalf("after the record: %d events (%+v), later %v; want the outcome, appended later", len(audit.evs), audit.evs, audit.lastLater)
	}
	p.Done(gateway.Outcome{Status: warden.StatusOK})
	if p.End(gateway.Outcome{}) != nil || len(audit.evs) != 1 {
		t.Fatal("a permit ended twice")
	}
	// Done, whose caller waits for the record, does not let it wait for company.
	p2 := e.gw.Authorize(req.Context(), c, &gateway.Call{Tool: "api", Action: "items.get"})
	p2.Done(gateway.Outcome{Status: warden.StatusOK})
	if ev := audit.evs[len(audit.evs)-1]; ev.Type != warden.EventToolResult || audit.lastLater {
		t.Fatalf("Done recorded %s, later %v; want the outcome by Append", ev.Type, audit.lastLater)
	}
}
