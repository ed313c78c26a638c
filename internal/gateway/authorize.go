package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/clock"
)

// DecisionTTL is how long an allowed decision of the decision API waits for its outcome; after
// that it is closed with status error and its concurrency slot is released.
const DecisionTTL = 10 * time.Minute

// AuthorizeRequest is the wire type apitype.AuthorizeRequest; see there.
type AuthorizeRequest = apitype.AuthorizeRequest

// AuthorizeResponse is the wire type apitype.AuthorizeResponse; see there.
type AuthorizeResponse = apitype.AuthorizeResponse

// OutcomeRequest is the wire type apitype.OutcomeRequest; see there.
type OutcomeRequest = apitype.OutcomeRequest

// pendingDecisions holds allowed decisions of the decision API until their outcome arrives.
type pendingDecisions struct {
	mu sync.Mutex
	m  map[string]*pendingDecision
}

type pendingDecision struct {
	agent   string
	permit  *Permit
	expires time.Time
}

func (pd *pendingDecisions) put(id string, d *pendingDecision) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	if pd.m == nil {
		pd.m = map[string]*pendingDecision{}
	}
	pd.m[id] = d
}

// take removes and returns the decision if it belongs to agent.
func (pd *pendingDecisions) take(id, agent string) *pendingDecision {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	d, ok := pd.m[id]
	if !ok || d.agent != agent {
		return nil
	}
	delete(pd.m, id)
	return d
}

func (pd *pendingDecisions) expire(now time.Time) []*pendingDecision {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	var out []*pendingDecision
	for id, d := range pd.m {
		if now.After(d.expires) {
			out = append(out, d)
			delete(pd.m, id)
		}
	}
	return out
}

// AuthorizeHandler serves POST /v1/authorize.
func (g *Pipeline) AuthorizeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := g.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
			writeGatewayError(w, http.StatusUnauthorized, warden.ReasonInvalidToken, warden.ErrorMessage(err), "")
			return
		}
		var req AuthorizeRequest
		if err := decodeBody(w, r, &req); err != nil {
			writeGatewayError(w, warden.HTTPStatus(err), "invalid_request", warden.ErrorMessage(err), "")
			return
		}
		if req.Tool == "" || req.Action == "" {
			writeGatewayError(w, http.StatusBadRequest, "invalid_request", "tool and action are required", "")
			return
		}
		if req.Session != "" && !warden.ValidSessionID(req.Session) {
			writeGatewayError(w, http.StatusBadRequest, "invalid_request", "session must be 1 to 128 printable ASCII characters without spaces", "")
			return
		}
		if req.Hold != nil && *req.Hold != 0 {
			writeGatewayError(w, http.StatusBadRequest, "invalid_request", "hold must be 0 (answer at once while the call waits for a person's approval), or left out to wait up to the server's approvals.hold", "")
			return
		}
		call := &Call{Entry: EntryAuthorize, Tool: req.Tool, Action: req.Action, Resource: req.Resource, Arguments: req.Arguments,
			Trace: ParseTraceparent(req.Traceparent), Session: req.Session, NoWait: req.Hold != nil}
		if req.Traceparent == "" {
			call.Trace = ParseTraceparent(r.Header.Get("Traceparent"))
		}
		// The call happens after this request ends, so the permit must outlive it.
		p := g.Authorize(context.WithoutCancel(r.Context()), caller, call)
		resp := AuthorizeResponse{Decision: p.Decision, Traceparent: p.Trace.Traceparent(), ApprovalID: p.ApprovalID}
		// The agent is told the decision, not how the policy set fails to evaluate: the errors
		// are for the policies' authors (the audit event, policy test and explain).
		resp.Errors = nil
		if p.RetryAfter > 0 {
			resp.RetryAfterSeconds = int((p.RetryAfter + time.Second - 1) / time.Second)
		}
		if p.Allowed() {
			g.pending.put(p.Decision.ID, &pendingDecision{agent: caller.Agent.ID, permit: p, expires: g.now().Add(DecisionTTL)})
		}
		writeJSONBody(w, http.StatusOK, resp)
	})
}

// OutcomeHandler serves POST /v1/decisions/{id}/outcome.
func (g *Pipeline) OutcomeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := g.Authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
			writeGatewayError(w, http.StatusUnauthorized, warden.ReasonInvalidToken, warden.ErrorMessage(err), "")
			return
		}
		var req OutcomeRequest
		if err := decodeBody(w, r, &req); err != nil {
			writeGatewayError(w, warden.HTTPStatus(err), "invalid_request", warden.ErrorMessage(err), "")
			return
		}
		switch req.Status {
		case warden.StatusOK, warden.StatusError, warden.StatusCanceled:
		default:
			writeGatewayError(w, http.StatusBadRequest, "invalid_request", "status must be ok, error or canceled", "")
			return
		}
		if req.LatencyMS < 0 || req.BytesIn < 0 || req.BytesOut < 0 || req.UpstreamStatus < 0 || req.UpstreamStatus > 999 {
			writeGatewayError(w, http.StatusBadRequest, "invalid_request", "latency, bytes and status must be non-negative", "")
			return
		}
		if req.RemoteAddr != "" {
			ap, err := netip.ParseAddrPort(req.RemoteAddr)
			if err != nil {
				writeGatewayError(w, http.StatusBadRequest, "invalid_request", "remote_addr must be IP:port", "")
				return
			}
			req.RemoteAddr = ap.String()
		}
		var content any
		if len(req.Content) > 0 {
			dec := json.NewDecoder(bytes.NewReader(req.Content))
			dec.UseNumber()
			if err := dec.Decode(&content); err != nil {
				writeGatewayError(w, http.StatusBadRequest, "invalid_request", "content must be a JSON string or value", "")
				return
			}
		}
		id := r.PathValue("id")
		d := g.pending.take(id, caller.Agent.ID)
		if d == nil {
			writeGatewayError(w, http.StatusNotFound, "not_found", "no open decision "+quote(id)+" of this agent (outcomes are accepted once, within 10 minutes)", "")
			return
		}
		// Observed before the answer: the framework's next call may carry what this result said.
		if content != nil {
			if err := d.permit.Observe(content); err != nil {
				g.Log.Error("recording an outcome's content failed", "decision", id, "err", err)
				d.permit.Done(Outcome{Status: warden.StatusError})
				writeGatewayError(w, http.StatusServiceUnavailable, warden.ReasonFlowUnavailable,
					"the content could not be recorded in this session's flow state: do not hand this result to the model", id)
				return
			}
		}
		d.permit.Done(Outcome{
			Status: req.Status, UpstreamStatus: req.UpstreamStatus,
			Latency: time.Duration(req.LatencyMS * float64(time.Millisecond)), BytesIn: req.BytesIn, BytesOut: req.BytesOut,
			RemoteAddr: req.RemoteAddr,
		})
		w.WriteHeader(http.StatusNoContent)
	})
}

// expireDecisions closes decisions whose outcome never came.
func (g *Pipeline) expireDecisions(now time.Time) {
	for _, d := range g.pending.expire(now) {
		d.permit.Done(Outcome{Status: warden.StatusError})
	}
}

// Run does the gateway's background work until ctx ends: reloading tools and policies (another
// replica may have changed them) and closing decisions whose outcome never came.
func (g *Pipeline) Run(ctx context.Context, reload time.Duration) error {
	t := clock.Or(g.Clock).NewTicker(reload)
	defer t.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			// The clock's time, not the tick's: a tick received late (a fake clock advanced
			// past several periods keeps only the first) must not expire as of its past.
			g.expireDecisions(g.now())
			if g.Flow != nil {
				g.Flow.Expire()
				if err := g.Flow.ForgetStored(ctx); err != nil && ctx.Err() == nil {
					g.Log.Warn("deleting ended sessions' flow state", "err", err)
				}
				if now := g.now(); now.Sub(lastPrune) >= flowPruneEvery {
					lastPrune = now
					if _, err := g.Flow.Prune(ctx); err != nil && ctx.Err() == nil {
						g.Log.Warn("pruning idle sessions' flow state", "err", err)
					}
				}
			}
			if err := g.Registry.Load(ctx); err != nil && ctx.Err() == nil {
				g.Log.Warn("reloading tools and policies", "err", err)
			}
		}
	}
}

const maxDecisionBody = 2 << 20

// flowPruneEvery is how often idle sessions' flow state is pruned from the store.
const flowPruneEvery = time.Minute

func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxDecisionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return warden.Errorf(warden.ETooLarge, "request body is over %d bytes", maxDecisionBody)
		}
		return warden.Errorf(warden.EInvalid, "the body must be one JSON object with known fields")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return warden.Errorf(warden.EInvalid, "unexpected data after the JSON object")
	}
	return nil
}

func writeJSONBody(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
