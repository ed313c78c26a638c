package httpapi

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/admin"
)

func TestDecodeStrict(t *testing.T) {
	cases := []struct{ body, err string }{
		{`{"name":"a","owner":"b","purpose":"c"}`, ""},
		{`{"name":"a","extra":1}`, `unknown field "extra"`},
		{`{"name":"a"} {"name":"b"}`, "unexpected data after the object"},
		{`{"name":"a"}   `, ""},
		{``, "empty"},
		{`{"name":`, "unexpected end of input"},
		{`{"name":1}`, "must be string"},
		{`[1,2]`, "must be"},
		{`{"name":"a" "owner":"b"}`, "syntax error"},
	}
	for _, tc := range cases {
		var spec admin.AgentSpec
		err := DecodeStrict(strings.NewReader(tc.body), &spec)
		if tc.err == "" && err != nil {
			t.Errorf("%s: %v", tc.body, err)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || warden.ErrorCode(err) != warden.EInvalid) {
			t.Errorf("%s: got %v, want invalid error containing %q", tc.body, err, tc.err)
		}
	}
}

func TestParseAuditFilter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	f, err := ParseAuditFilter(url.Values{"agent": {"bot"}, "since": {"2h"}, "until": {"2026-11-25T11:30:00Z"}, "type": {"agent.*"}, "limit": {"10"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if f.Agent != "bot" || !f.Since.Equal(now.Add(-2*time.Hour)) || f.Until.Hour() != 11 || f.Type != "agent.*" || f.Limit != 10 {
		t.Fatalf("%+v", f)
	}
	if f, err := ParseAuditFilter(url.Values{"since": {"7d"}}, now); err != nil || !f.Since.Equal(now.Add(-7*24*time.Hour)) {
		t.Fatalf("7d: %v %v", f.Since, err)
	}
	for _, q := range []url.Values{
		{"limit": {"0"}}, {"limit": {"5000"}}, {"since": {"yesterday"}}, {"after": {"-1"}}, {"agent": {"a", "b"}}, {"x": {"1"}},
	} {
		if _, err := ParseAuditFilter(q, now); warden.ErrorCode(err) != warden.EInvalid {
			t.Errorf("%v: %v", q, err)
		}
	}
}

func FuzzDecodeStrict(f *testing.F) {
	f.Add(`{"name":"a","owner":"b@c.d","purpose":"p","labels":{"k":"v"}}`)
	f.Add(`{"name":"a"}{}`)
	f.Add(`{"labels":{"a":1}}`)
	f.Fuzz(func(t *testing.T, body string) {
		var spec admin.AgentSpec
		err := DecodeStrict(strings.NewReader(body), &spec)
		if err != nil && warden.ErrorCode(err) != warden.EInvalid {
			t.Fatalf("a malformed body must be an invalid-request error, got %v", err)
		}
		if err != nil && strings.Contains(warden.ErrorMessage(err), body) && len(body) > 8 {
			t.Fatalf("the error echoes the body: %v", err)
		}
	})
}

func FuzzParseAuditFilter(f *testing.F) {
	f.Add("agent=bot&since=1h&limit=5")
	f.Add("since=2026-01-02T15:04:05Z&until=7d")
	f.Add("after=99999999999999999999")
	f.Fuzz(func(t *testing.T, query string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		fl, err := ParseAuditFilter(q, time.Now())
		if err != nil && warden.ErrorCode(err) != warden.EInvalid {
			t.Fatalf("got %v", err)
		}
		if err == nil && (fl.Limit < 0 || fl.Limit > 1000 || fl.AfterSeq < 0) {
			t.Fatalf("out of range filter accepted: %+v", fl)
		}
	})
}
