package budget

import (
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

func TestParseSpec(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tool, action, spec string
		kind               string
		limit              float64
		window             time.Duration
		arg                string
		format             string // "" means the spec itself
	}{
		{"github", "issues.comment", "rate 20/hour", warden.BudgetRate, 20, time.Hour, "", ""},
		{"", "", "rate 5/second", warden.BudgetRate, 5, time.Second, "", ""},
		{"github", "", "rate 5/s", warden.BudgetRate, 5, time.Second, "", "rate 5/second"},
		{"github", "", "  rate   100/m ", warden.BudgetRate, 100, time.Minute, "", "rate 100/minute"},
		{"", "", "quota 1000/day", warden.BudgetQuota, 1000, 24 * time.Hour, "", ""},
		{"", "", "quota 1000/d", warden.BudgetQuota, 1000, 24 * time.Hour, "", "quota 1000/day"},
		{"github", "", "quota 7/h", warden.BudgetQuota, 7, time.Hour, "", "quota 7/hour"},
		{"github", "", "concurrency 4", warden.BudgetConcurrency, 4, 0, "", ""},
		{"", "", "concurrency 1", warden.BudgetConcurrency, 1, 0, "", ""},
		{"payments", "send", "sum amount 500/day", warden.BudgetSum, 500, 24 * time.Hour, "amount", ""},
		{"payments", "send", "sum payment.amount 99.95/hour", warden.BudgetSum, 99.95, time.Hour, "payment.amount", ""},
		{"payments", "", "sum _cents 0.5/minute", warden.BudgetSum, 0.5, time.Minute, "_cents", ""},
		{"payments", "send", "sum a.b2.c_3 1000000000000000/s", warden.BudgetSum, 1e15, time.Second, "a.b2.c_3", "sum a.b2.c_3 1000000000000000/second"},
		{"payments", "send", "sum amount 007.50/day", warden.BudgetSum, 7.5, 24 * time.Hour, "amount", "sum amount 7.5/day"},
		{"fs", "files/read-all", "quota 1000000000000000/day", warden.BudgetQuota, 1e15, 24 * time.Hour, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			b, err := ParseSpec("triage-bot", tt.tool, tt.action, tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			want := warden.Budget{
				ID: ID("triage-bot", tt.tool, tt.action, tt.kind, tt.arg), Agent: "triage-bot", Tool: tt.tool,
				Action: tt.action, Kind: tt.kind, Limit: tt.limit, Window: tt.window, Arg: tt.arg,
			}
			if *b != want {
				t.Errorf("ParseSpec = %+v\nwant %+v", *b, want)
			}
			wantFormat := tt.format
			if wantFormat == "" {
				wantFormat = tt.spec
			}
			if got := Format(b); got != wantFormat {
				t.Errorf("Format = %q, want %q", got, wantFormat)
			}
			if err := validate(b); err != nil {
				t.Errorf("validate(ParseSpec(…)) = %v", err)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		agent, tool, action, spec string
		want                      string // a part of the message
	}{
		{"triage-bot", "", "", "", "budget is empty"},
		{"triage-bot", "", "", "   ", "budget is empty"},
		{"triage-bot", "", "", "speed 20/hour", `unknown kind "speed"`},
		{"triage-bot", "", "", "Rate 20/hour", `unknown kind "Rate"`},
		{"triage-bot", "", "", "rate 20", "missing the window"},
		{"triage-bot", "", "", "rate 20/fortnight", `unknown window "fortnight"`},
		{"triage-bot", "", "", "rate 20/", `unknown window ""`},
		{"triage-bot", "", "", "rate /hour", "missing the limit"},
		{"triage-bot", "", "", "rate 20 /hour", `want "rate N/WINDOW"`},
		{"triage-bot", "", "", "rate 20/hour extra", `want "rate N/WINDOW"`},
		{"triage-bot", "", "", "rate 0/hour", "must be positive"},
		{"triage-bot", "", "", "rate 000/hour", "must be positive"},
		{"triage-bot", "", "", "rate -1/hour", "not a plain decimal"},
		{"triage-bot", "", "", "rate +1/hour", "not a plain decimal"},
		{"triage-bot", "", "", "rate 1e3/hour", "not a plain decimal"},
		{"triage-bot", "", "", "rate 0x10/hour", "not a plain decimal"},
		{"triage-bot", "", "", "rate 1_000/hour", "not a plain decimal"},
		{"triage-bot", "", "", "rate Inf/hour", "not a plain decimal"},
		{"triage-bot", "", "", "rate NaN/hour", "not a plain decimal"},
		{"triage-bot", "", "", "rate 2.5/hour", "whole number"},
		{"triage-bot", "", "", "quota 10.0/day", "whole number"},
		{"triage-bot", "", "", "rate 1000000000000001/hour", "at most 1e15"},
		{"triage-bot", "", "", "rate 99999999999999999999999999999999/hour", "at most 1e15"},
		{"triage-bot", "", "", "rate 999999999999999999999999999999999/hour", "too long"},
		{"triage-bot", "", "", "quota 1000/week", `unknown window "week"`},
		{"triage-bot", "", "", "quota 1000", "missing the window"},
		{"triage-bot", "", "", "concurrency", `want "concurrency N"`},
		{"triage-bot", "", "", "concurrency 4/hour", "concurrency has no window"},
		{"triage-bot", "", "", "concurrency 0", "must be positive"},
		{"triage-bot", "", "", "concurrency 1.5", "whole number"},
		{"triage-bot", "payments", "", "sum 500/day", `want "sum ARG N/WINDOW"`},
		{"triage-bot", "payments", "", "sum amount 500", "missing the window"},
		{"triage-bot", "payments", "", "sum amount 0/day", "must be positive"},
		{"triage-bot", "payments", "", "sum amount 0.0/day", "must be positive"},
		{"triage-bot", "payments", "", "sum amount 5./day", "not a plain decimal"},
		{"triage-bot", "payments", "", "sum amount .5/day", "not a plain decimal"},
		{"triage-bot", "payments", "", "sum 1amount 500/day", `argument "1amount"`},
		{"triage-bot", "payments", "", "sum amount. 500/day", `argument "amount."`},
		{"triage-bot", "payments", "", "sum .amount 500/day", `argument ".amount"`},
		{"triage-bot", "payments", "", "sum a..b 500/day", `argument "a..b"`},
		{"triage-bot", "payments", "", "sum a-b 500/day", `argument "a-b"`},
		{"triage-bot", "payments", "", "sum a[0] 500/day", `argument "a[0]"`},
		{"triage-bot", "payments", "", "sum " + strings.Repeat("a", 129) + " 500/day", "at most 128 characters"},
		{"triage-bot", "", "", "sum amount 500/day", "a sum needs a tool"},
		{"triage-bot", "", "", strings.Repeat("x", 257), "longer than 256"},
		{"", "", "", "rate 20/hour", "invalid agent name"},
		{"Triage", "", "", "rate 20/hour", "invalid agent name"},
		{"triage-bot", "Git Hub", "", "rate 20/hour", "invalid tool name"},
		{"triage-bot", "", "issues.comment", "rate 20/hour", "names no tool"},
		{"triage-bot", "github", "issues comment", "rate 20/hour", "invalid action"},
		{"triage-bot", "github", "issues:comment", "rate 20/hour", "invalid action"},
		{"triage-bot", "github", strings.Repeat("a", 129), "rate 20/hour", "invalid action"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			b, err := ParseSpec(tt.agent, tt.tool, tt.action, tt.spec)
			if err == nil {
				t.Fatalf("ParseSpec = %+v, want an error", b)
			}
			if code := warden.ErrorCode(err); code != warden.EInvalid {
				t.Errorf("code = %q, want %q", code, warden.EInvalid)
			}
			if msg := warden.ErrorMessage(err); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not contain %q", msg, tt.want)
			}
		})
	}
}

func TestIDIsDeterministicAndDistinct(t *testing.T) {
	t.Parallel()
	a, _ := ParseSpec("triage-bot", "github", "issues.comment", "rate 20/hour")
	b, _ := ParseSpec("triage-bot", "github", "issues.comment", "rate 500/day")
	if a.ID != b.ID {
		t.Errorf("the same scope and kind got IDs %s and %s; declaring it again must replace it", a.ID, b.ID)
	}
	ids := map[string]string{}
	for _, s := range [][5]string{
		{"triage-bot", "", "", "rate", ""},
		{"triage-bot", "github", "", "rate", ""},
		{"triage-bot", "github", "issues.comment", "rate", ""},
		{"triage-bot", "github", "issues.comment", "quota", ""},
		{"triage-bot", "githu", "bissues.comment", "rate", ""},
		{"other-bot", "github", "issues.comment", "rate", ""},
		{"pay-bot", "payments", "send", "sum", "amount"},
		{"pay-bot", "payments", "send", "sum", "fee"},
	} {
		id := ID(s[0], s[1], s[2], s[3], s[4])
		if !strings.HasPrefix(id, "bgt_") || len(id) != 28 {
			t.Errorf("ID%q = %q, want bgt_ and 24 hex digits", s, id)
		}
		if prev, dup := ids[id]; dup {
			t.Errorf("ID%q = ID%s", s, prev)
		}
		ids[id] = strings.Join(s[:], ",")
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct{ tool, action, spec, want string }{
		{"github", "issues.comment", "rate 20/hour", "rate 20/hour on triage-bot github issues.comment"},
		{"github", "", "concurrency 4", "concurrency 4 on triage-bot github"},
		{"", "", "quota 1000/d", "quota 1000/day on triage-bot"},
	}
	for _, tt := range tests {
		b, err := ParseSpec("triage-bot", tt.tool, tt.action, tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := Describe(b); got != tt.want {
			t.Errorf("Describe = %q, want %q", got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	good, _ := ParseSpec("pay-bot", "payments", "send", "sum amount 500/day")
	tests := []struct {
		name   string
		change func(b *warden.Budget)
		want   string
	}{
		{"ok", func(b *warden.Budget) {}, ""},
		{"no ID is fine", func(b *warden.Budget) { b.ID = "" }, ""},
		{"wrong ID", func(b *warden.Budget) { b.ID = "bgt_000000000000000000000000" }, "is not the one"},
		{"kind", func(b *warden.Budget) { b.Kind = "tokens" }, `invalid budget kind "tokens"`},
		{"window", func(b *warden.Budget) { b.Window = 7 * 24 * time.Hour }, "the window must be"},
		{"no window", func(b *warden.Budget) { b.Window = 0 }, "the window must be"},
		{"negative", func(b *warden.Budget) { b.Limit = -1 }, "must be positive"},
		{"huge", func(b *warden.Budget) { b.Limit = 1e16 }, "at most 1e15"},
		{"arg", func(b *warden.Budget) { b.Arg = "" }, "argument"},
		{"no tool", func(b *warden.Budget) { b.Tool, b.Action, b.ID = "", "", "" }, "a sum needs a tool"},
		{"arg on quota", func(b *warden.Budget) { b.Kind, b.ID = warden.BudgetQuota, "" }, "only a sum names an argument"},
		{"window on concurrency", func(b *warden.Budget) { b.Kind, b.Arg, b.Limit, b.ID = warden.BudgetConcurrency, "", 4, "" }, "concurrency has no window"},
		{"fraction of calls", func(b *warden.Budget) { b.Kind, b.Arg, b.Limit, b.ID = warden.BudgetRate, "", 2.5, "" }, "whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := *good
			tt.change(&b)
			err := validate(&b)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("validate = %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("validate = %v, want an error containing %q", err, tt.want)
			case err != nil && warden.ErrorCode(err) != warden.EInvalid:
				t.Fatalf("code %q, want invalid", warden.ErrorCode(err))
			}
		})
	}
}
