package apitype

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
)

const okLine = `{"name":"n","agent":"mail-assistant","session":"s1","on_behalf_of":"maria@acme.example","steps":[{"tool":"mail","action":"read","args":{"id":"m1"},"result":{"body":"hi"},"label":"benign","expect":"allow"},{"tool":"mail","action":"send","label":"attack","expect":"blocked"}],"expect":{"blocked":true}}`

func TestParseReplayLine(t *testing.T) {
	long := `"` + strings.Repeat("x", MaxReplayResultBytes) + `"`
	for _, tt := range []struct {
		name, line, err string
	}{
		{"a session", okLine, ""},
		{"no steps", `{"agent":"a","session":"s","steps":[]}`, "1 to 1000 steps"},
		{"unknown field", `{"agent":"a","session":"s","steps":[{"tool":"t","action":"x"}],"colour":"red"}`, `unknown field "colour"`},
		{"unknown step field", `{"agent":"a","session":"s","steps":[{"tool":"t","action":"x","output":"y"}]}`, `unknown field "output"`},
		{"two objects", okLine + okLine, "unexpected data"},
		{"not an object", `[1,2]`, "not a session object"},
		{"syntax", `{"agent":`, "not a session object"},
		{"wrong type", `{"agent":1,"session":"s","steps":[]}`, "field agent must be string"},
		{"bad agent", `{"agent":"Mail Bot","session":"s","steps":[{"tool":"t","action":"x"}]}`, "invalid agent name"},
		{"no session", `{"agent":"a","steps":[{"tool":"t","action":"x"}]}`, "session id"},
		{"session with a space", `{"agent":"a","session":"s 1","steps":[{"tool":"t","action":"x"}]}`, "session id"},
		{"no tool", `{"agent":"a","session":"s","steps":[{"action":"x"}]}`, "step 1: name the tool"},
		{"no action", `{"agent":"a","session":"s","steps":[{"tool":"t"}]}`, "step 1: name the action"},
		{"bad label", `{"agent":"a","session":"s","steps":[{"tool":"t","action":"x","label":"evil"}]}`, "label must be benign or attack"},
		{"bad expect", `{"agent":"a","session":"s","steps":[{"tool":"t","action":"x","expect":"maybe"}]}`, "expect must be"},
		{"result too large", `{"agent":"a","session":"s","steps":[{"tool":"t","action":"x","result":` + long + `}]}`, "the result is over"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseReplayLine([]byte(tt.line))
			if tt.err == "" {
				if err != nil || s.Agent != "mail-assistant" || len(s.Steps) != 2 || s.Expect == nil || !*s.Expect.Blocked {
					t.Fatalf("got %+v, %v", s, err)
				}
				return
			}
			if err == nil || warden.ErrorCode(err) != warden.EInvalid || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one saying %q", err, tt.err)
			}
			if strings.Contains(err.Error(), "xxxx") {
				t.Fatal("the error echoes the line")
			}
		})
	}
}

// TestReadReplaySessions: one session a line, blank lines skipped, an error names its line.
func TestReadReplaySessions(t *testing.T) {
	got, err := ReadReplaySessions(strings.NewReader(okLine + "\n\n  \n" + okLine + "\n"))
	if err != nil || len(got) != 2 {
		t.Fatalf("got %d sessions, %v", len(got), err)
	}
	for _, tt := range []struct{ in, err string }{
		{okLine + "\n\n{}\n", "line 3:"},
		{"", "no sessions"},
		{"\n \n", "no sessions"},
		{strings.Repeat("x", MaxReplayLineBytes+1), "a line is over"},
	} {
		if _, err := ReadReplaySessions(strings.NewReader(tt.in)); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%.20q: %v, want %q", tt.in, err, tt.err)
		}
	}
}

// FuzzReplayLine: any line is a valid session or a client's error, never a panic; a session
// it accepts is within the bounds and encodes back to a line it accepts again.
func FuzzReplayLine(f *testing.F) {
	for _, s := range []string{okLine, `{}`, `null`, `{"agent":"a","session":"s","steps":[{"tool":"t","action":"x","result":"\u0000"}]}`,
		`{"agent":"a","session":"s","steps":[{"tool":"t","action":"x","args":[1],"result":1e999}]}`, `{"steps":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		s, err := ParseReplayLine(line)
		if err != nil {
			if warden.ErrorCode(err) != warden.EInvalid {
				t.Fatalf("not a client's error: %v", err)
			}
			return
		}
		if len(s.Steps) == 0 || len(s.Steps) > MaxReplaySteps {
			t.Fatalf("accepted %d steps", len(s.Steps))
		}
		for _, st := range s.Steps {
			if len(st.Result) > MaxReplayResultBytes {
				t.Fatalf("accepted a result of %d bytes", len(st.Result))
			}
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("an accepted session does not encode: %v", err)
		}
		if _, err := ReadReplaySessions(bytes.NewReader(again)); err != nil {
			t.Fatalf("an accepted session, encoded, is refused: %v\n%s", err, again)
		}
	})
}
