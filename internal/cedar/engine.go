package cedar

import (
	"fmt"
	"iter"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/ast"
	"github.com/cedar-policy/cedar-go/types"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// msgEvaluatorFailed is the message of a decision whose evaluation panicked. What panicked is
// internal detail and stays out of it.
const msgEvaluatorFailed = "the policy evaluator failed; denied"

// Policy is the wire type apitype.Policy; see there.
type Policy = apitype.Policy

// compiledPolicy is a Policy ready to evaluate. Its Source is left empty until asked for: printing
// ten thousand policies would double the time Compile takes, and only people read it.
type compiledPolicy struct {
	Policy
	cedar *cedar.Policy
	// scope is a permit's principal and action scope alone — any resource, no conditions — for
	// MayPermit; nil for a forbid.
	scope *cedar.Policy
	// sets are the names of the named sets the policy reads, for Explain.
	sets []string
}

func (p *compiledPolicy) withSource() Policy {
	out := p.Policy
	out.Source = string(p.cedar.MarshalCedar())
	return out
}

// Engine decides requests by a compiled policy set. It is immutable once Compile returns it, so
// any number of goroutines may call its methods at once; a new policy version is a new Engine.
type Engine struct {
	version  int64
	policies []*compiledPolicy
	byID     map[cedar.PolicyID]*compiledPolicy
	index    index
	tools    map[string]*toolEntities
	// readsNum says some policy reads context.num; if none does, a decision does not build it.
	readsNum bool
	// readsNorm says some policy reads context.norm; if none does, a decision does not build it.
	readsNorm bool
	// sets are the named value sets of the policy set (SetPrefix files), as Set entities.
	sets map[types.EntityUID]types.Entity
}

// Compile parses, validates and indexes a policy set. files maps a file name to its Cedar text;
// tools are the registered tools, from which the schema is derived (see Schema); version is the
// policy set's version, reported in every decision.
//
// Every problem in every file is reported, not just the first: a *warden.Error with code
// warden.EInvalid whose cause is Problems. A tool that cannot be described (a bad name, kind or
// route) is an EInvalid error too, naming the tool.
func Compile(files map[string]string, tools []*warden.Tool, version int64) (*Engine, error) {
	vocab, err := newVocabulary(tools)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		version: version,
		byID:    make(map[cedar.PolicyID]*compiledPolicy),
		tools:   make(map[string]*toolEntities, len(vocab.tools)),
	}
	for name, tv := range vocab.tools {
		e.tools[name] = newToolEntities(tv)
	}

	var problems Problems
	e.sets = compileSets(files, &problems)
	check := &checker{vocab: vocab, sets: e.sets}
	names := slices.Sorted(maps.Keys(files))
	for _, file := range names {
		if _, ok := SetName(file); ok {
			continue
		}
		list, err := cedar.NewPolicyListFromBytes(file, []byte(files[file]))
		if err != nil {
			problems = append(problems, parseProblem(file, err))
			continue
		}
		for i, p := range list {
			cp := newCompiledPolicy(file, i, p)
			pos := p.Position()
			at := Problem{File: file, Line: pos.Line, Column: pos.Column, Policy: cp.ID}
			for _, msg := range check.policy(astOf(p)) {
				at.Message = msg
				problems = append(problems, at)
			}
			if first, dup := e.byID[cedar.PolicyID(cp.ID)]; dup {
				at.Message = fmt.Sprintf("id already used by the policy at %s:%d", first.File, first.Line)
				problems = append(problems, at)
				continue
			}
			cp.sets = check.setsRead
			e.byID[cedar.PolicyID(cp.ID)] = cp
			e.index.add(int32(len(e.policies)), astOf(p))
			e.policies = append(e.policies, cp)
		}
	}
	if len(problems) > 0 {
		return nil, warden.WrapError(warden.EInvalid, problemsMessage(problems), problems)
	}
	e.readsNum, e.readsNorm = check.readsNum, check.readsNorm
	return e, nil
}

func newCompiledPolicy(file string, i int, p *cedar.Policy) *compiledPolicy {
	ann := p.Annotations()
	id := fmt.Sprintf("%s#%d", file, i)
	if v, ok := ann[annotationID]; ok {
		id = string(v)
	}
	effect := "permit"
	if p.Effect() == cedar.Forbid {
		effect = "forbid"
	}
	cp := &compiledPolicy{
		Policy: Policy{
			ID:             id,
			File:           file,
			Line:           p.Position().Line,
			Effect:         effect,
			Approval:       ann[annotationApproval] == approvalRequired && effect == "permit",
			ApprovalWaived: ann[annotationApproval] == approvalWaived && effect == "permit",
		},
		cedar: p,
	}
	a := astOf(p)
	_, anyResource := a.Resource.(xast.ScopeTypeAll)
	switch {
	case effect == "permit":
		cp.scope = cedar.NewPolicyFromAST((*ast.Policy)(&xast.Policy{
			Effect: a.Effect, Principal: a.Principal, Action: a.Action, Resource: xast.ScopeTypeAll{},
		}))
	case len(a.Conditions) == 0 && anyResource:
		// A forbid with no condition and on any resource refuses every call its scope
		// admits: listings hide what it covers (MayPermit), since calling it can only fail.
		cp.scope = p
	}
	return cp
}

// astOf exposes a policy's syntax tree for inspection. cedar-go's public ast package is a type
// definition of x/exp/ast, which is the one that can be walked.
func astOf(p *cedar.Policy) *xast.Policy { return (*xast.Policy)(p.AST()) }

// cedarPosRE finds the position cedar-go's parser reports, which names its input "<input>".
var cedarPosRE = regexp.MustCompile(`<input>:(\d+):(\d+)`)

func parseProblem(file string, err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "parser error: ")
	p := Problem{File: file}
	if m := cedarPosRE.FindStringSubmatchIndex(msg); m != nil {
		fmt.Sscan(msg[m[2]:m[3]], &p.Line)
		fmt.Sscan(msg[m[4]:m[5]], &p.Column)
		msg = strings.TrimSpace(strings.TrimPrefix(msg[:m[0]]+msg[m[1]:], "parse error at "))
	}
	p.Message = "syntax error: " + msg
	return p
}

// problemsMessage is the public message of a failed Compile: every problem, up to a screenful.
func problemsMessage(ps Problems) string {
	const most = 10
	var b strings.Builder
	if len(ps) == 1 {
		b.WriteString("invalid policy: ")
	} else {
		fmt.Fprintf(&b, "invalid policy set (%d problems): ", len(ps))
	}
	for i, p := range ps {
		if i == most {
			fmt.Fprintf(&b, "; and %d more", len(ps)-most)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Version returns the version of the policy set, as given to Compile.
func (e *Engine) Version() int64 { return e.version }

// Policies returns the compiled policies in evaluation order: files by name, then by position.
func (e *Engine) Policies() []Policy {
	out := make([]Policy, len(e.policies))
	for i, p := range e.policies {
		out[i] = p.withSource()
	}
	return out
}

// Decide judges a request. It never panics and never errors: whatever goes wrong denies.
//
//   - A forbid that matches denies (forbidden_by_policy), whatever else matched.
//   - Otherwise, a forbid or an @approval("required") permit that fails to evaluate denies
//     (policy_error). Cedar would skip it, but these policies restrict: skipping one would allow
//     what its author meant to stop or hold, so warden fails closed.
//   - A permit that only allows and fails to evaluate does not apply, as in Cedar; when no
//     other permit allows, the denial's reason is policy_error rather than no_matching_policy.
//   - Otherwise, a matching permit allows (policy_allow), or asks for a person's approval
//     (approval_required) when any matching permit is annotated @approval("required"): of two
//     permits that disagree, the stricter wins, as forbid wins over permit.
//   - An allow where a matching permit is annotated @approval("waived") has the reason
//     approval_waived instead of policy_allow. The engine knows nothing of risk; the gateway
//     reads this reason as "no person's approval on account of the tool's risk" (a high or
//     critical tool otherwise needs one). A waiver never beats @approval("required") on another
//     matching permit, nor the approval a tool itself declares for an action.
//   - Otherwise the request is denied by default (no_matching_policy).
//
// Decision.Policies names the policies that determined the outcome, Decision.Errors every policy
// that failed to evaluate.
func (e *Engine) Decide(r *warden.Request) (d warden.Decision) {
	defer func() {
		// A panic inside the evaluator must not take the gateway down, nor let the call through.
		if recover() != nil {
			d = e.deny(warden.ReasonPolicyError, msgEvaluatorFailed)
		}
	}()
	ev := e.evaluate(r, e.candidatesFor)
	return ev.decision
}

// evaluation is a decided request with what Explain needs to show how.
type evaluation struct {
	decision   warden.Decision
	req        cedar.Request
	entities   *requestEntities
	candidates []int32
}

// candidateFunc picks the policies to evaluate for a request; tests swap in the full set to
// check the index.
type candidateFunc func(req cedar.Request, tool string) []int32

func (e *Engine) candidatesFor(req cedar.Request, tool string) []int32 {
	return e.index.candidates(string(req.Principal.ID), tool, string(req.Action.ID))
}

func (e *Engine) evaluate(r *warden.Request, pick candidateFunc) evaluation {
	if e == nil {
		return evaluation{decision: e.deny(warden.ReasonPolicyError, "no policy set is loaded")}
	}
	req, ents, err := e.translate(r, true)
	if err != nil {
		reason := warden.ReasonInvalidRequest
		if ir, ok := err.(*invalidRequest); ok && ir.reason != "" {
			reason = ir.reason
		}
		return evaluation{decision: e.deny(reason, err.Error())}
	}
	ev := evaluation{req: req, entities: ents, candidates: pick(req, r.Tool.Name)}
	if len(ev.candidates) == 0 {
		ev.decision = e.noMatch(req)
		return ev
	}
	_, diag := cedar.Authorize(e.iterate(ev.candidates), ents, req)

	var forbids, permits, approvals, waivers []string
	for _, reason := range diag.Reasons {
		p := e.byID[reason.PolicyID]
		switch {
		case p.Effect == "forbid":
			forbids = append(forbids, p.ID)
		case p.Approval:
			approvals = append(approvals, p.ID)
			permits = append(permits, p.ID)
		case p.ApprovalWaived:
			waivers = append(waivers, p.ID)
			permits = append(permits, p.ID)
		default:
			permits = append(permits, p.ID)
		}
	}
	// An error in a policy that restricts — a forbid, or a permit that asks for a person —
	// denies: skipping it would allow what its author meant to stop or hold. A permit that only
	// allows and fails simply does not apply, as in Cedar.
	var errs, restricting []warden.PolicyError
	for _, de := range diag.Errors {
		pe := warden.PolicyError{Policy: string(de.PolicyID), Message: de.Message}
		errs = append(errs, pe)
		if p := e.byID[de.PolicyID]; p.Effect == "forbid" || p.Approval {
			restricting = append(restricting, pe)
		}
	}
	switch {
	case len(forbids) > 0:
		ev.decision = e.decision(warden.EffectDeny, warden.ReasonForbidden, "forbidden by policy "+strings.Join(forbids, ", "), forbids)
	case len(restricting) > 0:
		ids, text := policyErrorsText(restricting)
		ev.decision = e.decision(warden.EffectDeny, warden.ReasonPolicyError,
			"denied because a policy could not be evaluated for this request: "+text, ids)
	case len(approvals) > 0:
		ev.decision = e.decision(warden.EffectApprovalRequired, warden.ReasonApprovalRequired,
			"policy "+strings.Join(approvals, ", ")+" allows this only with a person's approval", approvals)
	case len(waivers) > 0:
		ev.decision = e.decision(warden.EffectAllow, warden.ReasonApprovalWaived,
			"allowed by policy "+strings.Join(permits, ", ")+"; approval waived by policy "+strings.Join(waivers, ", "), permits)
	case len(permits) > 0:
		ev.decision = e.decision(warden.EffectAllow, warden.ReasonPolicyAllow, "allowed by policy "+strings.Join(permits, ", "), permits)
	case len(errs) > 0:
		// Nothing permits, and a permit that might have could not be evaluated: still the
		// default deny, but named for what an author has to fix.
		ids, text := policyErrorsText(errs)
		ev.decision = e.decision(warden.EffectDeny, warden.ReasonPolicyError,
			"no policy permits this request, and a permit could not be evaluated for it: "+text, ids)
	default:
		ev.decision = e.noMatch(req)
	}
	ev.decision.Errors = errs
	return ev
}

// policyErrorsText names the policies that failed to evaluate and says how each failed.
func policyErrorsText(errs []warden.PolicyError) (ids []string, text string) {
	ids = make([]string, len(errs))
	msgs := make([]string, len(errs))
	for i, pe := range errs {
		ids[i] = pe.Policy
		msgs[i] = "policy " + pe.Policy + ": " + pe.Message
	}
	return ids, strings.Join(msgs, "; ")
}

// iterate presents the candidate policies to cedar.Authorize in index order, which is the order
// of the policy set, so that reasons and errors come out in a stable order.
func (e *Engine) iterate(candidates []int32) cedar.PolicyIterator {
	return policyIterator(func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, i := range candidates {
			p := e.policies[i]
			if !yield(cedar.PolicyID(p.ID), p.cedar) {
				return
			}
		}
	})
}

type policyIterator iter.Seq2[cedar.PolicyID, *cedar.Policy]

func (it policyIterator) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return iter.Seq2[cedar.PolicyID, *cedar.Policy](it)
}

func (e *Engine) decision(effect, reason, message string, policies []string) warden.Decision {
	d := warden.Decision{Effect: effect, Reason: reason, Message: message, Policies: policies}
	if e != nil {
		d.PolicyVersion = e.version
	}
	return d
}

func (e *Engine) deny(reason, message string) warden.Decision {
	return e.decision(warden.EffectDeny, reason, message, nil)
}

func (e *Engine) noMatch(req cedar.Request) warden.Decision {
	// Denials are on the hot path too, so the entities are written out here: EntityUID.String
	// allocates for every rune it escapes, which made it a third of a denial's allocations.
	uid := func(u cedar.EntityUID) string { return string(u.Type) + "::" + strconv.Quote(string(u.ID)) }
	return e.deny(warden.ReasonNoMatchingPolicy, "no policy permits "+uid(req.Principal)+" to take "+uid(req.Action)+" on "+uid(req.Resource))
}

// Explanation is the wire type apitype.Explanation; see there.
type Explanation = apitype.Explanation

// PolicyResult is the wire type apitype.PolicyResult; see there.
type PolicyResult = apitype.PolicyResult

// Explain decides a request as Decide does and reports, for every policy considered, whether it
// matched and any evaluation error. It is meant for people, not the hot path.
func (e *Engine) Explain(r *warden.Request) (x Explanation) {
	defer func() {
		if recover() != nil {
			x = Explanation{Decision: e.deny(warden.ReasonPolicyError, msgEvaluatorFailed)}
		}
	}()
	ev := e.evaluate(r, e.candidatesFor)
	x.Decision = ev.decision
	if r != nil {
		x.Flow = r.Flow
	}
	if ev.entities == nil {
		return x
	}
	x.Principal, x.Action, x.Resource = ev.req.Principal.String(), ev.req.Action.String(), ev.req.Resource.String()
	x.Skipped = len(e.policies) - len(ev.candidates)
	x.Considered = make([]PolicyResult, 0, len(ev.candidates))
	for _, i := range ev.candidates {
		p := e.policies[i]
		for _, name := range p.sets {
			if x.Sets == nil {
				x.Sets = map[string]int{}
			}
			x.Sets[name] = setSize(e.sets[types.NewEntityUID(typeSet, types.String(name))])
		}
		res := PolicyResult{Policy: p.withSource()}
		_, diag := cedar.Authorize(e.iterate([]int32{i}), ev.entities, ev.req)
		res.Matched = len(diag.Reasons) > 0
		if len(diag.Errors) > 0 {
			res.Error = diag.Errors[0].Message
		}
		x.Considered = append(x.Considered, res)
	}
	return x
}
