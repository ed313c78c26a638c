package apitype

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// Bounds of a replay: what one request may ask the server to decide.
const (
	MaxReplaySessions    = 10000
	MaxReplaySteps       = 1000
	MaxReplayResultBytes = 1 << 20
	// MaxReplayLineBytes bounds one line of a JSONL file of sessions: a session's steps with
	// their arguments and results.
	MaxReplayLineBytes = 16 << 20
	// MaxReplayAuditEvents bounds the tool.call events a --from-audit replay reads.
	MaxReplayAuditEvents = 100000
)

// Labels of a replayed step: what its author says the call is, so that a replay can measure
// how many attack calls a policy set blocks and how many benign calls it lets through.
const (
	ReplayBenign = "benign"
	ReplayAttack = "attack"
)

// ReplayBlocked is what a step or session may expect besides an effect: denied or held for a
// person (warden.EffectDeny or warden.EffectApprovalRequired).
const ReplayBlocked = "blocked"

// ReplayRequest is the body of POST /v1/replay: recorded sessions, or the audit log's tool calls
// since a time, decided again by Files (the policies in force when empty). Nothing is stored,
// forwarded, counted against a budget or held for a person.
type ReplayRequest struct {
	Sessions  []ReplaySession   `json:"sessions,omitempty"`
	FromAudit *ReplayFromAudit  `json:"from_audit,omitempty"`
	Files     map[string]string `json:"files,omitempty"`
}

// ReplayFromAudit selects the audit log's tool.call events to replay.
type ReplayFromAudit struct {
	// Since is an RFC 3339 time or a duration before now ("7d", "12h").
	Since string `json:"since"`
}

// ReplaySession is one session of an agent: the calls it made in order, and what each returned.
// It is one line of a replay file.
type ReplaySession struct {
	Name       string        `json:"name,omitempty"`
	Agent      string        `json:"agent"`
	Session    string        `json:"session"`
	OnBehalfOf string        `json:"on_behalf_of,omitempty"`
	Steps      []ReplayStep  `json:"steps"`
	Expect     *ReplayExpect `json:"expect,omitempty"`
}

// ReplayExpect is what a whole session expects.
type ReplayExpect struct {
	// Blocked: true when at least one step must be denied or held, false when every step must
	// be allowed.
	Blocked *bool `json:"blocked,omitempty"`
}

// ReplayStep is one call and its result.
type ReplayStep struct {
	Tool     string          `json:"tool"`
	Action   string          `json:"action"`
	Resource string          `json:"resource,omitempty"`
	Args     json.RawMessage `json:"args,omitempty"`
	// Result is what the call returned (a JSON value: text, or the tool's structured output).
	// It is fed to the session's flow state when the step is allowed or held, as the gateway
	// would have seen it.
	Result json.RawMessage `json:"result,omitempty"`
	Label  string          `json:"label,omitempty"`  // ReplayBenign or ReplayAttack
	Expect string          `json:"expect,omitempty"` // allow, deny, approval_required or blocked
}

// Validate checks a session's shape and bounds; its errors name the step.
func (s *ReplaySession) Validate() error {
	if err := warden.ValidateName("agent", s.Agent); err != nil {
		return err
	}
	if !validSessionID(s.Session) {
		return warden.Errorf(warden.EInvalid, "session id: use 1 to 128 printable ASCII characters without spaces")
	}
	if len(s.Steps) == 0 || len(s.Steps) > MaxReplaySteps {
		return warden.Errorf(warden.EInvalid, "give 1 to %d steps", MaxReplaySteps)
	}
	for i, st := range s.Steps {
		if err := st.validate(); err != nil {
			return warden.Errorf(warden.EInvalid, "step %d: %s", i+1, warden.ErrorMessage(err))
		}
	}
	return nil
}

// validSessionID is the gateway's rule for a session id (the Warden-Session header, the
// decision API's session): 1 to 128 printable ASCII characters, no spaces.
func validSessionID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func (st *ReplayStep) validate() error {
	switch {
	case st.Tool == "":
		return warden.Errorf(warden.EInvalid, "name the tool")
	case st.Action == "":
		return warden.Errorf(warden.EInvalid, "name the action")
	case len(st.Result) > MaxReplayResultBytes:
		return warden.Errorf(warden.EInvalid, "the result is over %d bytes", MaxReplayResultBytes)
	}
	if len(st.Result) > 0 && !json.Valid(st.Result) {
		return warden.Errorf(warden.EInvalid, "the result is not a JSON value")
	}
	switch st.Label {
	case "", ReplayBenign, ReplayAttack:
	default:
		return warden.Errorf(warden.EInvalid, "label must be benign or attack")
	}
	switch st.Expect {
	case "", warden.EffectAllow, warden.EffectDeny, warden.EffectApprovalRequired, ReplayBlocked:
	default:
		return warden.Errorf(warden.EInvalid, "expect must be allow, deny, approval_required or blocked")
	}
	return nil
}

// ParseReplayLine reads one line of a replay file: exactly one JSON object, every field known,
// and a valid session.
func ParseReplayLine(line []byte) (ReplaySession, error) {
	var s ReplaySession
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return ReplaySession{}, warden.Errorf(warden.EInvalid, "not a session object: %s", JSONErrorMessage(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return ReplaySession{}, warden.Errorf(warden.EInvalid, "unexpected data after the session object")
	}
	if err := s.Validate(); err != nil {
		return ReplaySession{}, err
	}
	return s, nil
}

// JSONErrorMessage describes a JSON decoding error without echoing the input, which may hold a
// secret: the server's strict body decoding and the replay file's reader say it the same way.
func JSONErrorMessage(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return "syntax error at byte " + strconv.FormatInt(syntax.Offset, 10)
	case errors.As(err, &typ):
		return "field " + typ.Field + " must be " + typ.Type.String()
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: ")
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "malformed JSON"
}

// ReadReplaySessions reads a replay file: one session per line (JSON Lines); blank lines are
// skipped. An error names the line.
func ReadReplaySessions(r io.Reader) ([]ReplaySession, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), MaxReplayLineBytes)
	var out []ReplaySession
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if len(out) == MaxReplaySessions {
			return nil, warden.Errorf(warden.EInvalid, "line %d: at most %d sessions", n, MaxReplaySessions)
		}
		s, err := ParseReplayLine(line)
		if err != nil {
			return nil, warden.Errorf(warden.EInvalid, "line %d: %s", n, warden.ErrorMessage(err))
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, warden.Errorf(warden.EInvalid, "a line is over %d bytes", MaxReplayLineBytes)
		}
		return nil, err
	}
	if len(out) == 0 {
		return nil, warden.Errorf(warden.EInvalid, "no sessions: give one JSON object per line")
	}
	return out, nil
}

// ReplayReport is the answer of a replay.
type ReplayReport struct {
	// PolicyVersion is the version replayed, 0 for candidate files.
	PolicyVersion int64                 `json:"policy_version"`
	Sessions      []ReplaySessionReport `json:"sessions,omitempty"`
	Audit         *ReplayAuditReport    `json:"audit,omitempty"`
	Summary       ReplaySummary         `json:"summary"`
	// Notes say what a replay assumes: held steps taken as approved, events without flow facts.
	Notes []string `json:"notes,omitempty"`
}

// ReplaySessionReport is what became of one session.
type ReplaySessionReport struct {
	Name    string             `json:"name,omitempty"`
	Agent   string             `json:"agent"`
	Session string             `json:"session"`
	Steps   []ReplayStepReport `json:"steps"`
	// Blocked: at least one step was denied or held.
	Blocked  bool   `json:"blocked"`
	Mismatch string `json:"mismatch,omitempty"` // the session's expectation that failed
}

// ReplayStepReport is the decision on one step.
type ReplayStepReport struct {
	Index    int               `json:"index"` // from 1
	Tool     string            `json:"tool"`
	Action   string            `json:"action"`
	Label    string            `json:"label,omitempty"`
	Effect   string            `json:"effect"` // allow, deny or approval_required
	Reason   string            `json:"reason"`
	Message  string            `json:"message,omitempty"`
	Policies []string          `json:"policies,omitempty"`
	Labels   warden.FlowLabels `json:"labels"`
	Tainted  []ReplayTaint     `json:"tainted,omitempty"`
	// Fed: the step's result was fed to the session's flow state (it was allowed or held).
	Fed      bool   `json:"fed"`
	Expect   string `json:"expect,omitempty"`
	Mismatch bool   `json:"mismatch,omitempty"`
}

// ReplayTaint is a tainted argument of a step and the step whose result held its value.
type ReplayTaint struct {
	Arg          string `json:"arg"`
	Kind         string `json:"kind"`
	SourceStep   int    `json:"source_step"`
	SourceTool   string `json:"source_tool"`
	SourceAction string `json:"source_action"`
}

// ReplaySummary counts the decisions of a replay.
type ReplaySummary struct {
	Calls   int `json:"calls"`
	Allowed int `json:"allowed"`
	Denied  int `json:"denied"`
	Held    int `json:"held"`
	// ByEffect counts the calls by the effect label of the action called (none, internal,
	// external).
	ByEffect map[string]ReplayCounts `json:"by_effect,omitempty"`
	// AttackCalls and AttackBlocked count the steps labelled attack, and those denied or held;
	// BenignCalls and BenignAllowed the steps labelled benign, and those allowed.
	AttackCalls   int     `json:"attack_calls"`
	AttackBlocked int     `json:"attack_blocked"`
	AttackRatio   float64 `json:"attack_blocked_ratio"`
	BenignCalls   int     `json:"benign_calls"`
	BenignAllowed int     `json:"benign_allowed"`
	BenignRatio   float64 `json:"benign_allowed_ratio"`
	// Misses are the attack steps allowed and the benign steps blocked.
	Misses     []ReplayMiss `json:"misses,omitempty"`
	Mismatches int          `json:"mismatches"`
}

// ReplayCounts counts decisions.
type ReplayCounts struct {
	Calls   int `json:"calls"`
	Allowed int `json:"allowed"`
	Denied  int `json:"denied"`
	Held    int `json:"held"`
}

// ReplayMiss is a labelled step the policies got wrong, and why they decided as they did.
type ReplayMiss struct {
	Session string `json:"session"`
	Step    int    `json:"step"`
	Label   string `json:"label"`
	Effect  string `json:"effect"`
	Why     string `json:"why"`
}

// ReplayAuditReport compares each replayed tool.call event's recorded decision with the
// candidate policies' decision.
type ReplayAuditReport struct {
	Since  time.Time `json:"since"`
	Events int       `json:"events"` // tool.call events read
	// Replayed are the events policy decided (the others were refused before or after policy:
	// kill state, unknown tool, budgets; they are listed with Skipped set and not compared).
	Replayed int `json:"replayed"`
	// WithoutFlow counts replayed events recorded before flow facts were: they are decided as a
	// fresh session with no labels.
	WithoutFlow int `json:"without_flow"`
	// WouldBlock: recorded allowed, now denied or held. WouldAllow: recorded denied or held,
	// now allowed.
	WouldBlock int                   `json:"would_block"`
	WouldAllow int                   `json:"would_allow"`
	Truncated  bool                  `json:"truncated,omitempty"` // more than MaxReplayAuditEvents matched
	Decisions  []ReplayAuditDecision `json:"decisions"`
}

// ReplayAuditDecision is one tool.call event, as recorded and as replayed.
type ReplayAuditDecision struct {
	Seq            int64     `json:"seq"`
	Time           time.Time `json:"time"`
	DecisionID     string    `json:"decision_id,omitempty"`
	Agent          string    `json:"agent"`
	Session        string    `json:"session,omitempty"`
	Tool           string    `json:"tool"`
	Action         string    `json:"action"`
	Resource       string    `json:"resource,omitempty"`
	Recorded       string    `json:"recorded"` // the recorded effect
	RecordedReason string    `json:"recorded_reason"`
	Replayed       string    `json:"replayed,omitempty"` // allow, deny or approval_required
	Reason         string    `json:"reason,omitempty"`
	Policies       []string  `json:"policies,omitempty"`
	Flow           bool      `json:"flow"`              // the event recorded flow facts
	Skipped        string    `json:"skipped,omitempty"` // why it was not replayed
	Changed        bool      `json:"changed,omitempty"` // allowed then and not now, or the reverse
}
