package gateway_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/sqlite"
)

// recordingAudit is an audit log that keeps what it was asked to append, and refuses the events
// fail selects, as a full disk or a lost database would.
type recordingAudit struct {
	mu    sync.Mutex
	fail  func(ev *warden.AuditEvent) bool
	tried []warden.AuditEvent // every append, kept or not
	kept  []warden.AuditEvent // the appends that succeeded
}

func (a *recordingAudit) Append(_ context.Context, ev *warden.AuditEvent) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tried = append(a.tried, *ev)
	if a.fail != nil && a.fail(ev) {
		return errors.New("disk full")
	}
	a.kept = append(a.kept, *ev)
	return nil
}

// events returns the kept (or, with tried, the attempted) events of one type.
func (a *recordingAudit) events(typ string, tried bool) []warden.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	list := a.kept
	if tried {
		list = a.tried
	}
	var out []warden.AuditEvent
	for _, ev := range list {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// hookBudgets is a budget store whose Consume runs consume: it fails, denies, or changes the
// world (kills the agent) at the moment budgets are consumed. It counts the concurrency slots it
// handed out and those released.
type hookBudgets struct {
	consume         func() error
	denial          *gateway.BudgetDenial // the answer when consume is nil or returns nil
	calls           atomic.Int32
	taken, released atomic.Int32
}

func (b *hookBudgets) Consume(agent, tool, action string, args map[string]any, now time.Time) (func(), float64, *gateway.BudgetDenial, error) {
	b.calls.Add(1)
	if b.consume != nil {
		if err := b.consume(); err != nil {
			return nil, 0, nil, err
		}
	}
	if b.denial != nil {
		return nil, 0, b.denial, nil
	}
	b.taken.Add(1)
	return func() { b.released.Add(1) }, 0, nil, nil
}

// fakeApprovals answers every request with result, or fails with err; it keeps the requests.
type fakeApprovals struct {
	result   gateway.ApprovalResult
	err      error
	requests atomic.Int32
}

func (a *fakeApprovals) Await(ctx context.Context, req *gateway.ApprovalRequest) (gateway.ApprovalResult, error) {
	a.requests.Add(1)
	return a.result, a.err
}

// hookVerifier runs afterVerify once a token is verified and before the pipeline runs: the
// window in which an admin may act on the agent.
type hookVerifier struct {
	gateway.Verifier
	afterVerify func()
}

func (v hookVerifier) VerifyToken(ctx context.Context, token string) (*warden.Claims, error) {
	c, err := v.Verifier.VerifyToken(ctx, token)
	if err == nil && v.afterVerify != nil {
		v.afterVerify()
	}
	return c, err
}

// failureEnv is the HTTP gateway on a real store, token service, registry and Cedar engine, in
// front of a real upstream that counts what reaches it; the audit log, the budgets and the
// moment between token check and pipeline are the test's to break.
type failureEnv struct {
	gw       *gateway.Pipeline
	srv      *httptest.Server
	token    string
	audit    *recordingAudit
	budgets  *hookBudgets
	verifier *hookVerifier
	killer   *killswitch.Service
	store    *sqlite.Store
	reg      *gateway.Registry
	upstream atomic.Int32
}

func newFailureEnv(t *testing.T, policy string) *failureEnv {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	env := &failureEnv{audit: &recordingAudit{}, budgets: &hookBudgets{}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		env.upstream.Add(1)
		io.WriteString(w, `{"id": 7}`)
	}))
	t.Cleanup(up.Close)

	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Now().UTC()
	_, hash := identity.NewSecret("wsec_")
	agent := &warden.Agent{ID: warden.NewID("agt_"), Name: "bot", Owner: "a@example.com", Purpose: "test",
		Status: warden.AgentActive, Epoch: 1, SecretHash: hash, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := store.CreateAgent(ctx, agent); err != nil {
		t.Fatal(err)
	}
	tool := &warden.Tool{Name: "api", Kind: warden.ToolHTTP, URL: up.URL, Risk: warden.RiskLow,
		Routes: []string{"GET /items/{id} -> items.get item:{id}", "POST /items -> items.create"}, CreatedAt: now, UpdatedAt: now}
	if err := store.CreateTool(ctx, tool); err != nil {
		t.Fatal(err)
	}
	if err := store.CreatePolicySet(ctx, &warden.PolicySet{Files: map[string]string{"p.cedar": policy}, CreatedAt: now}, -1); err != nil {
		t.Fatal(err)
	}
	kill := killswitch.NewState()
	ids, err := identity.New(ctx, store, make([]byte, 32), identity.Config{Issuer: "http://127.0.0.1:8787", Kill: kill}, log)
	if err != nil {
		t.Fatal(err)
	}
	issued, err := ids.Issue(ctx, agent, identity.IssueRequest{})
	if err != nil {
		t.Fatal(err)
	}
	env.token = issued.Token
	reg := gateway.NewRegistry(store, log)
	reg.Kill = kill
	_ = reg.Load(ctx) // a policy that does not compile leaves no engine: the case under test
	env.verifier = &hookVerifier{Verifier: ids}
	env.gw = &gateway.Pipeline{Registry: reg, Tokens: env.verifier, Kill: kill, Budgets: env.budgets,
		Secrets: noSecrets{}, Audit: env.audit, Log: log}
	env.killer = &killswitch.Service{Store: store, State: kill, Audit: env.audit, Calls: env.gw, Tokens: ids, Registry: reg, Log: log}
	env.store, env.reg = store, reg
	mux := http.NewServeMux()
	mux.Handle("/http/", env.gw.HTTPHandler(gateway.HTTPOptions{}))
	mux.Handle("POST /v1/authorize", env.gw.AuthorizeHandler())
	env.srv = httptest.NewServer(mux)
	t.Cleanup(env.srv.Close)
	return env
}

// kill kills the agent as `warden kill` does.
func (e *failureEnv) kill(t *testing.T) {
	if _, err := e.killer.Kill(context.Background(), &warden.Principal{Name: "ops", Role: warden.RoleAdmin}, "bot", "test", nil); err != nil {
		t.Error(err)
	}
}

// restore kills the agent and restores it at once: active again, in a new epoch.
func (e *failureEnv) restore(t *testing.T) {
	e.kill(t)
	_, hash := identity.NewSecret("wsec_")
	if _, err := e.killer.Restore(context.Background(), &warden.Principal{Name: "ops", Role: warden.RoleAdmin}, "bot", "test", hash); err != nil {
		t.Error(err)
	}
}

const permitAll = `permit(principal == Agent::"bot", action == Action::"api:items.get", resource);`

// askAPerson sends every call of permitAll to a person.
const askAPerson = `@approval("required") ` + permitAll

// approvals has the gateway ask a and returns a setup that does so.
func approvals(a *fakeApprovals) func(t *testing.T, e *failureEnv) {
	return func(t *testing.T, e *failureEnv) { e.gw.Approvals = a }
}

// get is a GET through the HTTP gateway.
func get(path string) func(e *failureEnv) *http.Request {
	return func(e *failureEnv) *http.Request {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		return req
	}
}

// postJSON is a POST of a body labelled JSON through the HTTP gateway.
func postJSON(path, body string) func(e *failureEnv) *http.Request {
	return func(e *failureEnv) *http.Request {
		req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		return req
	}
}

// TestPipelineFailuresDeny drives every failure branch of the pipeline through the HTTP
// gateway (and the decision API, for arguments only it can get wrong): each call is refused
// with its reason, recorded, and never reaches the upstream; the concurrency slot it took is
// given back and nothing of it is left in flight. A request warden cannot judge as sent (a body
// it cannot read) is answered 4xx, and recorded as a refusal like any other.
// staleState is a fleet whose feed is down and whose last reload is too old.
type staleState struct{}

func (staleState) Stale(time.Time) bool { return true }

func TestPipelineFailuresDeny(t *testing.T) {
	tests := []struct {
		name   string
		policy string
		setup  func(t *testing.T, e *failureEnv)
		// request is the call; nil is GET /http/api/items/7.
		request func(e *failureEnv) *http.Request
		// decisionAPI: the call goes to POST /v1/authorize with this body, and the decision is
		// in its 200 answer.
		decisionAPI string
		status      int
		effect      string
		reason      string
		// recorded is false when the audit log is what failed: the refusal has no record to check.
		recorded bool
		// consumed is whether budgets were consumed: a call refused before budgets (kill state,
		// policy, approval) costs the agent nothing.
		consumed bool
		message  string // if set, a prefix of the answer's message
		// tool and action are what the event records of the call, when not api and items.get.
		tool, action string
	}{
		{
			name:   "allowed: the environment forwards a call it may",
			policy: permitAll,
			status: http.StatusOK, effect: warden.EffectAllow, reason: warden.ReasonPolicyAllow, recorded: true, consumed: true,
		},
		{
			// An allow that is not on record does not happen.
			name:   "audit log unavailable",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.audit.fail = func(*warden.AuditEvent) bool { return true }
			},
			status: http.StatusServiceUnavailable, effect: warden.EffectError, reason: warden.ReasonAuditUnavailable, consumed: true,
		},
		{
			name:   "budget store fails",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.budgets.consume = func() error { return errors.New("database is locked") }
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonBudgetError, recorded: true, consumed: true,
		},
		{
			name:   "budget spent",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.budgets.denial = &gateway.BudgetDenial{Message: "rate budget spent", RetryAfter: 2 * time.Second}
			},
			status: http.StatusTooManyRequests, effect: warden.EffectDeny, reason: warden.ReasonBudgetExceeded, recorded: true, consumed: true,
			message: "rate budget spent",
		},
		{
			name:   "budget argument missing",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.budgets.denial = &gateway.BudgetDenial{Reason: warden.ReasonBudgetArgumentInvalid, Message: "argument amount is missing"}
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonBudgetArgumentInvalid, recorded: true, consumed: true,
			message: "argument amount is missing",
		},
		{
			// The kill race, made deterministic: the agent is killed after the first kill-state
			// check and before the call is registered in flight. The second check must see it.
			name:   "killed while its budgets are consumed",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.budgets.consume = func() error { e.kill(t); return nil }
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonAgentInactive, recorded: true, consumed: true,
		},
		{
			name:   "restored into a new epoch while its budgets are consumed",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.budgets.consume = func() error { e.restore(t); return nil }
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonStaleEpoch, recorded: true, consumed: true,
		},
		{
			name:   "restored into a new epoch after its token was checked",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.verifier.afterVerify = func() { e.restore(t) }
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonStaleEpoch, recorded: true,
		},
		{
			name:   "killed after its token was checked",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.verifier.afterVerify = func() { e.kill(t) }
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonAgentInactive, recorded: true,
		},
		{
			name:   "lockdown",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				if _, err := e.killer.Lockdown(context.Background(), &warden.Principal{Name: "ops", Role: warden.RoleAdmin}, "incident 9", warden.RiskLow); err != nil {
					t.Fatal(err)
				}
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonLockdown, recorded: true,
			message: "lockdown in force: incident 9",
		},
		{
			// Another replica may have killed the agent: a replica that cannot confirm its kill
			// state is current allows nothing, on the HTTP gateway and the decision API alike.
			name:   "kill state stale",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.gw.Fresh = staleState{}
			},
			status: http.StatusServiceUnavailable, effect: warden.EffectError, reason: warden.ReasonStaleState, recorded: true,
			message: "this replica cannot confirm its kill state is current",
		},
		{
			name:        "kill state stale, through the decision API",
			policy:      permitAll,
			setup:       func(t *testing.T, e *failureEnv) { e.gw.Fresh = staleState{} },
			decisionAPI: `{"tool":"api","action":"items.get"}`,
			status:      http.StatusOK, effect: warden.EffectError, reason: warden.ReasonStaleState, recorded: true,
		},
		{
			name:   "tool disabled",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				if _, err := e.store.UpdateTool(context.Background(), "api", func(tool *warden.Tool) error { tool.Disabled = true; return nil }); err != nil {
					t.Fatal(err)
				}
				if err := e.reg.Load(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonToolDisabled, recorded: true,
			message: "tool api is disabled",
		},
		{
			// The registry's own check, for a replica whose kill state has not heard yet.
			name:   "tool disabled, the kill state not told",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				if _, err := e.store.UpdateTool(context.Background(), "api", func(tool *warden.Tool) error { tool.Disabled = true; return nil }); err != nil {
					t.Fatal(err)
				}
				e.reg.Kill = nil
				if err := e.reg.Load(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonToolDisabled, recorded: true,
			message: "tool api is disabled",
		},
		{
			name:    "unknown tool",
			policy:  permitAll,
			request: get("/http/nosuch/items/7"),
			status:  http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonUnknownTool, recorded: true,
			message: `no tool named "nosuch"`, tool: "nosuch", action: "-",
		},
		{
			name:    "no route",
			policy:  permitAll,
			request: get("/http/api/nothing/here"),
			status:  http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonNoRoute, recorded: true,
			action: "GET /nothing/here",
		},
		{
			name:    "a path warden will not interpret",
			policy:  permitAll,
			request: get("/http/api/items/a%2Fb"),
			status:  http.StatusBadRequest, effect: warden.EffectDeny, reason: warden.ReasonInvalidPath, recorded: true,
			action: "GET /items/a%2Fb",
		},
		{
			name:        "arguments that are not an object (decision API)",
			policy:      permitAll,
			decisionAPI: `{"tool": "api", "action": "items.get", "arguments": [1, 2]}`,
			status:      http.StatusOK, effect: warden.EffectDeny, reason: warden.ReasonInvalidArguments, recorded: true,
		},
		{
			name:    "a body labelled JSON that does not parse",
			policy:  permitAll,
			request: postJSON("/http/api/items", `{"name": `),
			status:  http.StatusBadRequest, effect: warden.EffectDeny, reason: warden.ReasonInvalidRequest, recorded: true,
			action: "items.create",
		},
		{
			name:    "a JSON body too large to inspect",
			policy:  permitAll,
			request: postJSON("/http/api/items", `{"name": "`+strings.Repeat("x", 1<<20)+`"}`),
			status:  http.StatusRequestEntityTooLarge, effect: warden.EffectDeny, reason: warden.ReasonInvalidRequest, recorded: true,
			action: "items.create",
		},
		{
			name:   "killed after its token was checked, with a body warden cannot judge",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.verifier.afterVerify = func() { e.kill(t) }
			},
			request: postJSON("/http/api/items", `{"name": `),
			status:  http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonAgentInactive, recorded: true,
			action: "items.create",
		},
		{
			name:   "killed after its token was checked, on no route",
			policy: permitAll,
			setup: func(t *testing.T, e *failureEnv) {
				e.verifier.afterVerify = func() { e.kill(t) }
			},
			request: get("/http/api/nothing/here"),
			status:  http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonAgentInactive, recorded: true,
			action: "GET /nothing/here",
		},
		{
			// Cedar would skip a policy it cannot evaluate; warden denies.
			name:   "policy evaluation error",
			policy: `@id("e") permit(principal, action, resource) when { principal.getTag("region") == "eu" };`,
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonPolicyError, recorded: true,
		},
		{
			name:   "no policy set in force",
			policy: `permit(principal, action, resource) when {`,
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonPolicyError, recorded: true,
			message: "no valid policy set is in force",
		},
		{
			name:   "approval needed, and this server takes none",
			policy: askAPerson,
			status: http.StatusForbidden, effect: warden.EffectApprovalRequired, reason: warden.ReasonApprovalRequired, recorded: true,
			message: "this call needs a person's approval",
		},
		{
			name:   "approval cannot be obtained",
			policy: askAPerson,
			setup:  approvals(&fakeApprovals{err: errors.New("database is locked")}),
			status: http.StatusServiceUnavailable, effect: warden.EffectError, reason: warden.ReasonApprovalError, recorded: true,
			message: "the approval could not be obtained",
		},
		{
			name:   "approval pending",
			policy: askAPerson,
			setup:  approvals(&fakeApprovals{result: gateway.ApprovalResult{State: warden.ApprovalPending, RequestID: "apr_1"}}),
			status: http.StatusForbidden, effect: warden.EffectApprovalRequired, reason: warden.ReasonApprovalPending, recorded: true,
			message: "waiting for a person's approval: request apr_1",
		},
		{
			name:   "approval limit reached",
			policy: askAPerson,
			setup:  approvals(&fakeApprovals{result: gateway.ApprovalResult{State: warden.ApprovalLimited, Message: "3 requests are waiting"}}),
			status: http.StatusForbidden, effect: warden.EffectDeny, reason: warden.ReasonApprovalLimit, recorded: true,
			message: "3 requests are waiting",
		},
		{
			name:   "approval rejected",
			policy: askAPerson,
			setup:  approvals(&fakeApprovals{result: gateway.ApprovalResult{State: warden.ApprovalRejected, RequestID: "apr_1", Message: "no"}}),
			status: http.StatusForbidden, effect: warden.EffectRejected, reason: warden.ReasonApprovalRejected, recorded: true,
			message: "rejected: no (request apr_1)",
		},
		{
			name:   "approval expired",
			policy: askAPerson,
			setup:  approvals(&fakeApprovals{result: gateway.ApprovalResult{State: warden.ApprovalExpired, RequestID: "apr_1"}}),
			status: http.StatusForbidden, effect: warden.EffectExpired, reason: warden.ReasonApprovalExpired, recorded: true,
			message: "the approval request apr_1 expired",
		},
		{
			name:   "approved: the environment forwards a call a person approved",
			policy: askAPerson,
			setup:  approvals(&fakeApprovals{result: gateway.ApprovalResult{State: warden.ApprovalApproved, RequestID: "apr_1", Approvers: []string{"carol"}}}),
			status: http.StatusOK, effect: warden.EffectApproved, reason: warden.ReasonApproved, recorded: true, consumed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFailureEnv(t, tt.policy)
			if tt.setup != nil {
				tt.setup(t, e)
			}
			var req *http.Request
			switch {
			case tt.decisionAPI != "":
				req, _ = http.NewRequest("POST", e.srv.URL+"/v1/authorize", strings.NewReader(tt.decisionAPI))
			case tt.request != nil:
				req = tt.request(e)
			default:
				req = get("/http/api/items/7")(e)
			}
			req.Header.Set("Authorization", "Bearer "+e.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// The gateway records an allowed call's outcome after the answer is sent: wait for
			// its handler to return.
			e.srv.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d (%.300s); want %d", resp.StatusCode, body, tt.status)
			}
			allowed := warden.EffectAllows(tt.effect)
			switch {
			case tt.decisionAPI != "":
				var ar gateway.AuthorizeResponse
				if err := json.Unmarshal(body, &ar); err != nil || ar.Effect != tt.effect || ar.Reason != tt.reason || ar.ID == "" || !strings.HasPrefix(ar.Message, tt.message) {
					t.Errorf("answer %s; want the effect %s, reason %s, a decision ID and a message %q…", body, tt.effect, tt.reason, tt.message)
				}
			case !allowed:
				var ge gateway.GatewayError
				if err := json.Unmarshal(body, &ge); err != nil || ge.Error.Code != tt.reason || ge.Error.DecisionID == "" || !strings.HasPrefix(ge.Error.Message, tt.message) {
					t.Errorf("answer %s; want the code %s, a decision ID and a message %q…", body, tt.reason, tt.message)
				}
			}
			if n, want := e.upstream.Load(), map[bool]int32{true: 1, false: 0}[allowed]; n != want {
				t.Errorf("the upstream saw %d requests; want %d", n, want)
			}
			if n := e.gw.InFlight(""); n != 0 {
				t.Errorf("%d calls left in flight", n)
			}
			if n, want := e.budgets.calls.Load(), map[bool]int32{true: 1, false: 0}[tt.consumed]; n != want {
				t.Errorf("budgets consumed %d times; want %d", n, want)
			}
			if taken, released := e.budgets.taken.Load(), e.budgets.released.Load(); taken != released {
				t.Errorf("budgets: %d concurrency slots taken, %d released", taken, released)
			}

			calls := e.audit.events(warden.EventToolCall, false)
			results := e.audit.events(warden.EventToolResult, false)
			if !tt.recorded {
				// The log refused everything: the pipeline tried to record its allow, was
				// refused, and took it back; no outcome was ever attempted.
				tried := e.audit.events(warden.EventToolCall, true)
				if len(tried) != 1 || tried[0].Decision.Effect != warden.EffectAllow {
					t.Errorf("attempted call events %+v; want the one allow the log refused", tried)
				}
				if n := len(e.audit.events(warden.EventToolResult, true)); n != 0 {
					t.Errorf("%d outcome events attempted for a call that never happened", n)
				}
				return
			}
			if len(calls) != 1 {
				t.Fatalf("%d tool.call events recorded; want 1: %+v", len(calls), calls)
			}
			if d := calls[0].Decision; d.Effect != tt.effect || d.Reason != tt.reason || d.ID == "" {
				t.Errorf("recorded decision %+v; want effect %s, reason %s, an ID", d, tt.effect, tt.reason)
			}
			tool, action := cmp.Or(tt.tool, "api"), cmp.Or(tt.action, "items.get")
			if action == "-" {
				action = ""
			}
			if calls[0].Actor.Name != "bot" || calls[0].Target.Tool != tool || calls[0].Target.Action != action {
				t.Errorf("recorded call %+v %+v; want bot calling %s %q", calls[0].Actor, calls[0].Target, tool, action)
			}
			if n, want := len(results), map[bool]int{true: 1, false: 0}[allowed]; n != want {
				t.Errorf("%d tool.result events recorded; want %d", n, want)
			}
		})
	}
}
