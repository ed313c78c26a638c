package budget

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

const (
	// maxLimit keeps every limit where float64 still counts whole calls exactly (2^53 ≈ 9e15).
	maxLimit = 1e15
	// maxNumberLen bounds a limit's text: 16 integer digits, a point and fifteen decimals is plenty.
	maxNumberLen = 32
	maxArgLen    = 128
	maxSpecLen   = 256

	day = 24 * time.Hour
)

// windows are the windows a budget may have, with the names a spec may use for them. The long
// name comes first: it is what Format writes.
var windows = []struct {
	names [2]string
	d     time.Duration
}{
	{[2]string{"second", "s"}, time.Second},
	{[2]string{"minute", "m"}, time.Minute},
	{[2]string{"hour", "h"}, time.Hour},
	{[2]string{"day", "d"}, day},
}

const specForms = `want "rate N/WINDOW", "quota N/WINDOW", "concurrency N" or "sum ARG N/WINDOW" with WINDOW second, minute, hour or day`

// ParseSpec reads a budget as warden.yaml and `warden budget set` write it, for the calls of agent
// (all of them when tool is ""), of one tool (when action is "") or of one action:
//
//	rate 20/hour           at most 20 calls an hour, smoothed (see Budgets for the exact rule)
//	quota 1000/day         at most 1000 calls per calendar day (UTC)
//	concurrency 4          at most 4 calls in flight
//	sum amount 500/day     the argument amount summed over a calendar day at most 500
//
// Windows are second, minute, hour and day, or s, m, h and d. Limits are positive and at most 1e15;
// counts of calls are whole numbers, a sum's limit may have decimals. A sum names its argument as a
// dotted path into nested arguments ("payment.amount") and needs a tool: an argument means
// something only for the tools that take it. The budget's ID derives from agent, tool, action, kind
// and argument, so that declaring the same budget again, with another limit or window, replaces it.
// Errors are warden.EInvalid and say what is wrong.
func ParseSpec(agent, tool, action, spec string) (*warden.Budget, error) {
	b := &warden.Budget{Agent: agent, Tool: tool, Action: action}
	if err := validateScope(b); err != nil {
		return nil, err
	}
	if len(spec) > maxSpecLen {
		return nil, warden.Errorf(warden.EInvalid, "invalid budget: longer than %d characters", maxSpecLen)
	}
	invalid := func(why string) error {
		return warden.Errorf(warden.EInvalid, "invalid budget %q: %s", spec, why)
	}
	f := strings.Fields(spec)
	if len(f) == 0 {
		return nil, warden.Errorf(warden.EInvalid, "budget is empty: %s", specForms)
	}
	b.Kind = f[0]
	var why string
	switch b.Kind {
	case warden.BudgetRate, warden.BudgetQuota:
		if len(f) != 2 {
			return nil, invalid(`want "` + b.Kind + ` N/WINDOW", e.g. "` + b.Kind + ` 20/hour"`)
		}
		b.Limit, b.Window, why = parseRatio(f[1], true)
	case warden.BudgetConcurrency:
		if len(f) != 2 {
			return nil, invalid(`want "concurrency N", e.g. "concurrency 4"`)
		}
		if strings.Contains(f[1], "/") {
			return nil, invalid("concurrency has no window: it counts the calls in flight now")
		}
		b.Limit, why = parseLimit(f[1], true)
	case warden.BudgetSum:
		if len(f) != 3 {
			return nil, invalid(`want "sum ARG N/WINDOW", e.g. "sum amount 500/day"`)
		}
		b.Arg = f[1]
		if why = argProblem(b.Arg); why == "" {
			b.Limit, b.Window, why = parseRatio(f[2], false)
		}
	default:
		why = "unknown kind " + strconv.Quote(b.Kind) + ": " + specForms
	}
	if why != "" {
		return nil, invalid(why)
	}
	if b.Kind == warden.BudgetSum && b.Tool == "" {
		return nil, invalid(sumNeedsTool)
	}
	b.ID = ID(b.Agent, b.Tool, b.Action, b.Kind, b.Arg)
	return b, nil
}

const sumNeedsTool = "a sum needs a tool: an agent-wide sum would deny every call of the tools that have no such argument"

// parseRatio reads "N/WINDOW".
func parseRatio(s string, whole bool) (limit float64, window time.Duration, why string) {
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return 0, 0, "missing the window: want N/WINDOW, e.g. 20/hour"
	}
	if limit, why = parseLimit(n, whole); why != "" {
		return 0, 0, why
	}
	for _, win := range windows {
		if w == win.names[0] || w == win.names[1] {
			return limit, win.d, ""
		}
	}
	return 0, 0, "unknown window " + strconv.Quote(w) + ": use second, minute, hour or day (or s, m, h, d)"
}

// parseLimit reads a plain decimal: digits, and for a sum a point and more digits. No sign, exponent,
// hex or separators, so that a limit reads the same to a person as it does to warden.
func parseLimit(s string, whole bool) (float64, string) {
	if s == "" {
		return 0, "missing the limit"
	}
	if len(s) > maxNumberLen {
		return 0, "limit " + strconv.Quote(s[:maxNumberLen]+"…") + " is too long"
	}
	intPart, frac, hasPoint := strings.Cut(s, ".")
	if !warden.AllDigits(intPart) || hasPoint && !warden.AllDigits(frac) {
		return 0, "limit " + strconv.Quote(s) + " is not a plain decimal number"
	}
	if hasPoint && whole {
		return 0, "limit " + strconv.Quote(s) + " must be a whole number of calls"
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, "limit " + strconv.Quote(s) + " is not a number"
	}
	return v, limitProblem(v, whole)
}

func limitProblem(v float64, whole bool) string {
	switch {
	case math.IsNaN(v) || v <= 0:
		return "the limit must be positive"
	case v > maxLimit:
		return "the limit must be at most 1e15"
	case whole && v != math.Trunc(v):
		return "the limit must be a whole number of calls"
	}
	return ""
}

// argProblem checks a sum's argument path: [A-Za-z_][A-Za-z0-9_.]* with no empty step.
func argProblem(arg string) string {
	bad := "argument " + strconv.Quote(arg) + " must be a name or a dotted path of names (letters, digits, '_'; not starting with a digit), at most 128 characters"
	if arg == "" || len(arg) > maxArgLen || arg[0] >= '0' && arg[0] <= '9' {
		return bad
	}
	for _, step := range strings.Split(arg, ".") {
		if step == "" {
			return bad
		}
		for i := 0; i < len(step); i++ {
			if c := step[i]; !isAlnum(c) && c != '_' {
				return bad
			}
		}
	}
	return ""
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// validateScope checks the names a budget applies to. Agent and tool names follow
// warden.ValidateName; actions warden.ValidateAction, the rule routes use.
func validateScope(b *warden.Budget) error {
	if err := warden.ValidateName("agent", b.Agent); err != nil {
		return err
	}
	if b.Tool == "" {
		if b.Action != "" {
			return warden.Errorf(warden.EInvalid, "budget for action %q names no tool: an action belongs to a tool", b.Action)
		}
		return nil
	}
	if err := warden.ValidateName("tool", b.Tool); err != nil {
		return err
	}
	if b.Action != "" {
		return warden.ValidateAction(b.Action)
	}
	return nil
}

// validate checks a budget that did not come from ParseSpec (the API's JSON, a stored row) by the
// same rules. An empty ID is accepted, since Budgets.Put fills it in; any other must be the one ID
// derives.
func validate(b *warden.Budget) error {
	if err := validateScope(b); err != nil {
		return err
	}
	invalid := func(why string) error {
		return warden.Errorf(warden.EInvalid, "invalid budget %s: %s", Describe(b), why)
	}
	whole := true
	switch b.Kind {
	case warden.BudgetRate, warden.BudgetQuota:
	case warden.BudgetConcurrency:
		if b.Window != 0 {
			return invalid("concurrency has no window")
		}
	case warden.BudgetSum:
		whole = false
		if why := argProblem(b.Arg); why != "" {
			return invalid(why)
		}
		if b.Tool == "" {
			return invalid(sumNeedsTool)
		}
	default:
		return warden.Errorf(warden.EInvalid, "invalid budget kind %q: use rate, quota, concurrency or sum", b.Kind)
	}
	if b.Kind != warden.BudgetSum && b.Arg != "" {
		return invalid("only a sum names an argument")
	}
	if b.Kind != warden.BudgetConcurrency && windowName(b.Window) == "" {
		return invalid("the window must be a second, a minute, an hour or a day")
	}
	if why := limitProblem(b.Limit, whole); why != "" {
		return invalid(why)
	}
	if want := ID(b.Agent, b.Tool, b.Action, b.Kind, b.Arg); b.ID != "" && b.ID != want {
		return invalid("its ID " + strconv.Quote(b.ID) + " is not the one its scope and kind give (" + want + ")")
	}
	return nil
}

// ID is the ID of the budget of kind (on argument arg, for a sum) over the calls of agent, tool and
// action. It is a digest rather than the names themselves because actions may contain '/', and an
// ID travels in URL paths.
func ID(agent, tool, action, kind, arg string) string {
	h := sha256.New()
	for _, s := range [...]string{agent, tool, action, kind, arg} {
		h.Write([]byte(s))
		h.Write([]byte{0}) // names hold no NUL, so the fields can't run into each other
	}
	return "bgt_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// Format writes a budget as ParseSpec reads it: "rate 20/hour", "sum amount 500/day".
func Format(b *warden.Budget) string {
	limit := strconv.FormatFloat(b.Limit, 'f', -1, 64)
	switch b.Kind {
	case warden.BudgetConcurrency:
		return b.Kind + " " + limit
	case warden.BudgetSum:
		return b.Kind + " " + b.Arg + " " + limit + "/" + windowText(b.Window)
	}
	return b.Kind + " " + limit + "/" + windowText(b.Window)
}

func windowName(d time.Duration) string {
	for _, w := range windows {
		if w.d == d {
			return w.names[0]
		}
	}
	return ""
}

// windowText names a window even when it is none of the four, so that describing an invalid budget
// in an error never fails.
func windowText(d time.Duration) string {
	if n := windowName(d); n != "" {
		return n
	}
	return d.String()
}

// Describe says what a budget limits, for people: "rate 20/hour on triage-bot github issues.comment".
func Describe(b *warden.Budget) string {
	s := Format(b) + " on " + b.Agent
	if b.Tool != "" {
		s += " " + b.Tool
		if b.Action != "" {
			s += " " + b.Action
		}
	}
	return s
}

// scopeText names the calls a budget covers from the agent's side, for denial messages: the agent
// knows who it is.
func scopeText(b *warden.Budget) string {
	switch {
	case b.Tool == "":
		return "all tools"
	case b.Action == "":
		return b.Tool
	}
	return b.Tool + " " + b.Action
}
