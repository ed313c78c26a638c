package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/gateway"
)

// ApplyPrefix marks the policy files that `warden apply` generates from grants; people's own
// files may not use it, so applying one never overwrites the other.
const ApplyPrefix = "@apply/"

const (
	maxPolicyFiles = 1000
	maxPolicyBytes = 16 << 20
)

var policyFileRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._/-]{0,199}\.cedar$`)

// PolicyApply is the wire type apitype.PolicyApply; see there.
type PolicyApply = apitype.PolicyApply

func validatePolicyFiles(files map[string]string) error {
	if len(files) > maxPolicyFiles {
		return warden.Errorf(warden.EInvalid, "at most %d policy files", maxPolicyFiles)
	}
	total := 0
	for name, text := range files {
		if !policyFileRE.MatchString(name) || strings.Contains(name, "..") || strings.Contains(name, "//") {
			return warden.Errorf(warden.EInvalid, "policy file name %q: use a relative path of letters, digits and . _ - / ending in .cedar", name)
		}
		total += len(text)
	}
	if total > maxPolicyBytes {
		return warden.Errorf(warden.EInvalid, "policy files total over %d bytes", maxPolicyBytes)
	}
	return nil
}

// ApplyPolicies stores files as the new set of people-written policies (the generated grants of
// `warden apply` are kept), after checking that the whole set compiles against the tools.
func (s *Service) ApplyPolicies(ctx context.Context, p *warden.Principal, req PolicyApply) (*warden.PolicySet, error) {
	comment, err := checkPolicyApply(req)
	if err != nil {
		return nil, err
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	current, version, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	if req.IfVersion != 0 && req.IfVersion != version {
		return nil, warden.Errorf(warden.EConflict, "policy version is %d, not %d: someone applied in between", version, req.IfVersion)
	}
	return s.storePolicies(ctx, p, withGenerated(req.Files, current), version, warden.EventPolicyApply, comment)
}

// check validates an upload before anything is read or stored, and returns its comment.
func checkPolicyApply(req PolicyApply) (string, error) {
	// A body without files ({}, null, {"files":null}) is a client's mistake, not a request to
	// remove every policy: that takes an explicit {"files":{}}.
	if req.Files == nil {
		return "", warden.Errorf(warden.EInvalid, `give the policy files: "files" is an object of file name to Cedar text ({} for none)`)
	}
	if err := validatePolicyFiles(req.Files); err != nil {
		return "", err
	}
	return validateReason(req.Comment, false)
}

// withGenerated returns a new set of the people's files with the generated files (ApplyPrefix)
// and the named sets (cedar.SetPrefix) of current beside them, which an upload of people's
// files keeps.
func withGenerated(files, current map[string]string) map[string]string {
	next := make(map[string]string, len(files)+1)
	maps.Copy(next, files)
	for name, text := range current {
		if Generated(name) {
			next[name] = text
		}
	}
	return next
}

// Generated says whether a policy file is one the server keeps rather than one people upload:
// the grants of `warden apply` (ApplyPrefix) and the named sets (cedar.SetPrefix).
func Generated(file string) bool {
	_, set := cedar.SetName(file)
	return set || strings.HasPrefix(file, ApplyPrefix)
}

// storePolicies compiles files against the tools, stores them as the next version if the
// latest is still base, and reloads the gateway. The caller holds policyMu.
func (s *Service) storePolicies(ctx context.Context, p *warden.Principal, files map[string]string, base int64, event, comment string) (*warden.PolicySet, error) {
	tools, err := s.store.Tools(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := cedar.Compile(files, gateway.WithBuiltins(tools), base+1); err != nil {
		return nil, err
	}
	ps := &warden.PolicySet{Files: files, CreatedBy: p.Name, CreatedAt: s.now().UTC(), Comment: comment}
	if err := s.store.CreatePolicySet(ctx, ps, base); err != nil {
		return nil, err
	}
	if err := s.registry.Load(ctx); err != nil {
		s.log.Error("reloading the gateway after a policy change", "version", ps.Version, "err", err)
	}
	s.publish(ctx, fleet.TopicPolicy, fmt.Sprint(ps.Version))
	msg := fmt.Sprintf("version %d", ps.Version)
	if comment != "" {
		msg += ": " + comment
	}
	return ps, s.audit.Append(ctx, &warden.AuditEvent{
		Type:     event,
		Actor:    humanActor(ctx, p),
		Target:   warden.EventTarget{Resource: fmt.Sprintf("policy:%d", ps.Version)},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Message: msg, PolicyVersion: ps.Version},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	})
}

// PolicyHistory lists the versions, newest first.
func (s *Service) PolicyHistory(ctx context.Context) ([]*warden.PolicySet, error) {
	return s.store.PolicySets(ctx)
}

// PolicySet returns one version with its files (0: the latest).
func (s *Service) PolicySet(ctx context.Context, version int64) (*warden.PolicySet, error) {
	return s.store.PolicySet(ctx, version)
}

// RollbackPolicies stores an earlier version's files as a new version.
func (s *Service) RollbackPolicies(ctx context.Context, p *warden.Principal, version int64, reason string) (*warden.PolicySet, error) {
	reason, err := validateReason(reason, false)
	if err != nil {
		return nil, err
	}
	old, err := s.store.PolicySet(ctx, version)
	if err != nil {
		return nil, err
	}
	if version <= 0 {
		return nil, warden.Errorf(warden.EInvalid, "name the version to roll back to")
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	_, latest, err := s.currentPolicies(ctx)
	if err != nil {
		return nil, err
	}
	comment := fmt.Sprintf("rollback to %d", version)
	if reason != "" {
		comment += ": " + reason
	}
	return s.storePolicies(ctx, p, old.Files, latest, warden.EventPolicyRollback, comment)
}

// PolicyCase is the wire type apitype.PolicyCase; see there.
type PolicyCase = apitype.PolicyCase

// PolicyTest is the wire type apitype.PolicyTest; see there.
type PolicyTest = apitype.PolicyTest

// PolicyCaseResult is the wire type apitype.PolicyCaseResult; see there.
type PolicyCaseResult = apitype.PolicyCaseResult

// TestPolicies evaluates each case and says whether it got the decision it expects, explaining
// every decision. Nothing is stored.
func (s *Service) TestPolicies(ctx context.Context, t PolicyTest) ([]PolicyCaseResult, error) {
	if len(t.Cases) == 0 || len(t.Cases) > 10000 {
		return nil, warden.Errorf(warden.EInvalid, "give 1 to 10000 cases")
	}
	engine, err := s.engineFor(ctx, t.Files)
	if err != nil {
		return nil, err
	}
	out := make([]PolicyCaseResult, 0, len(t.Cases))
	for i, c := range t.Cases {
		switch c.Expect {
		case warden.EffectAllow, warden.EffectDeny, warden.EffectApprovalRequired:
		default:
			return nil, warden.Errorf(warden.EInvalid, "case %d (%s): expect must be allow, deny or approval_required", i+1, c.Name)
		}
		req, err := s.policyRequest(ctx, c)
		if err != nil {
			return nil, warden.Errorf(warden.EInvalid, "case %d (%s): %s", i+1, c.Name, warden.ErrorMessage(err))
		}
		x := explainAsGateway(engine, req)
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("case %d: %s %s:%s", i+1, c.Agent, c.Tool, c.Action)
		}
		out = append(out, PolicyCaseResult{Name: name, Pass: x.Decision.Effect == c.Expect, Expect: c.Expect, Got: x.Decision.Effect, Explanation: x})
	}
	return out, nil
}

// PolicySchema returns the Cedar schema of the policies that may be written over the registered
// tools (the built-in egress tool among them).
func (s *Service) PolicySchema(ctx context.Context) (*apitype.PolicySchema, error) {
	tools, err := s.store.Tools(ctx)
	if err != nil {
		return nil, err
	}
	text, err := cedar.Schema(gateway.WithBuiltins(tools))
	if err != nil {
		return nil, err
	}
	return &apitype.PolicySchema{Schema: text}, nil
}

// ExplainPolicy explains the decision the policies in force make for one request.
func (s *Service) ExplainPolicy(ctx context.Context, c PolicyCase) (cedar.Explanation, error) {
	engine, err := s.engineFor(ctx, nil)
	if err != nil {
		return cedar.Explanation{}, err
	}
	req, err := s.policyRequest(ctx, c)
	if err != nil {
		return cedar.Explanation{}, err
	}
	return explainAsGateway(engine, req), nil
}

// explainAsGateway explains a request as the gateway decides it: policy, then the approval rules
// that hold an allowed call for a person whatever policy says — the tool lists the action, or
// its risk is high or critical and no permit waived it (gateway.ApprovalReason) — so that
// `policy test` and `policy explain` say approval_required where the gateway would hold the call.
func explainAsGateway(engine *cedar.Engine, req *warden.Request) cedar.Explanation {
	x := engine.Explain(req)
	if x.Decision.Effect != warden.EffectAllow {
		return x
	}
	if why := gateway.ApprovalReason(req.Tool, req.Action, x.Decision); why != "" {
		x.Decision.Effect, x.Decision.Reason = warden.EffectApprovalRequired, warden.ReasonApprovalRequired
		x.Decision.Message = "a person must approve: " + approvalWhy(why)
	}
	return x
}

// approvalWhy says in words why a call policy allowed still waits for a person.
func approvalWhy(why string) string {
	switch why {
	case warden.ApprovalByTool:
		return "the tool lists this action as needing approval"
	case warden.ApprovalByRisk:
		return "the tool's risk is high or critical and no matching permit is @approval(\"waived\")"
	}
	return why
}

func (s *Service) engineFor(ctx context.Context, files map[string]string) (*cedar.Engine, error) {
	tools, err := s.store.Tools(ctx)
	if err != nil {
		return nil, err
	}
	var version int64
	if len(files) == 0 {
		if files, version, err = s.currentPolicies(ctx); err != nil {
			return nil, err
		}
	} else {
		if err := validatePolicyFiles(files); err != nil {
			return nil, err
		}
		current, _, err := s.currentPolicies(ctx)
		if err != nil {
			return nil, err
		}
		files = withSets(files, current)
	}
	engine, err := cedar.Compile(files, gateway.WithBuiltins(tools), version)
	if err != nil {
		return nil, err
	}
	// The MCP tools' pinned input schemas type their arguments, as in the gateway.
	pins, err := s.store.ToolManifests(ctx, "")
	if err != nil {
		return nil, err
	}
	schemas, _ := cedar.ManifestSchemas(pins)
	return engine.WithInputSchemas(schemas), nil
}

func (s *Service) policyRequest(ctx context.Context, c PolicyCase) (*warden.Request, error) {
	if err := warden.ValidateName("agent", c.Agent); err != nil {
		return nil, err
	}
	agent, err := s.store.Agent(ctx, c.Agent)
	switch {
	case warden.ErrorCode(err) == warden.ENotFound:
		agent = &warden.Agent{Name: c.Agent, Owner: c.Owner, Labels: c.Labels, Status: warden.AgentActive}
	case err != nil:
		return nil, err
	}
	tool := warden.EgressTool
	if c.Tool != tool.Name {
		if tool, err = s.store.Tool(ctx, c.Tool); err != nil {
			return nil, err
		}
	}
	args := c.Arguments
	if args == nil {
		args = map[string]any{}
	}
	// Arguments arrive decoded as float64; policy wants exact numbers, as the gateway gives it.
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "arguments cannot be encoded")
	}
	exact, err := gateway.DecodeArguments(raw)
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "%v", err)
	}
	flow, err := s.caseFlow(ctx, tool, c, exact)
	if err != nil {
		return nil, err
	}
	return &warden.Request{Agent: agent, Tool: tool, Action: c.Action, Resource: c.Resource, Arguments: exact, OnBehalfOf: c.OnBehalfOf,
		Time: time.Now(), SessionID: flow.Session, Flow: flow}, nil
}

// caseFlow is the flow facts of a policy case: the action's labels as the gateway resolves them
// (the MCP tool's pinned manifest gives its annotations) and the session the case describes.
func (s *Service) caseFlow(ctx context.Context, tool *warden.Tool, c PolicyCase, args map[string]any) (*warden.FlowFacts, error) {
	var manifest json.RawMessage
	if tool.Kind == warden.ToolMCP || tool.Kind == warden.ToolMCPCommand {
		ms, err := s.store.ToolManifests(ctx, tool.Name)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.Name == c.Action && m.State == warden.ManifestPinned {
				manifest = m.Manifest
			}
		}
	}
	f := &warden.FlowFacts{Labels: gateway.FlowLabels(tool, c.Action, manifest)}
	cs := c.Session
	if cs == nil {
		return f, nil
	}
	if cs.ID != "" && !warden.ValidSessionID(cs.ID) {
		return nil, warden.Errorf(warden.EInvalid, "session id: use 1 to 128 printable ASCII characters without spaces")
	}
	f.Session, f.PrivateRead = cs.ID, cs.PrivateRead
	if len(cs.Tainted) > 0 && len(cs.UntrustedFrom) == 0 {
		return nil, warden.Errorf(warden.EInvalid, "session: tainted arguments need the untrusted output they came from (untrusted_from)")
	}
	src := map[string]bool{}
	for _, u := range cs.UntrustedFrom {
		t, a, hasAction := strings.Cut(u, ":")
		if warden.ValidateName("tool", t) != nil || hasAction && a == "" {
			return nil, warden.Errorf(warden.EInvalid, "session: untrusted_from %q: use TOOL or TOOL:ACTION", u)
		}
		src[t] = true
		if hasAction {
			src[u] = true
		}
	}
	f.UntrustedRead = len(src) > 0
	f.UntrustedSources = slices.Sorted(maps.Keys(src))
	for _, arg := range slices.Compact(slices.Sorted(slices.Values(cs.Tainted))) {
		// A case names no call, so each tainted argument is credited to the first source.
		first, firstAction, _ := strings.Cut(cs.UntrustedFrom[0], ":")
		if _, ok := args[arg]; !ok {
			return nil, warden.Errorf(warden.EInvalid, "session: tainted argument %q is not an argument of the case", arg)
		}
		f.Tainted = append(f.Tainted, warden.TaintedArg{Arg: arg, Kind: "case", SourceTool: first, SourceAction: firstAction})
	}
	return f, nil
}
