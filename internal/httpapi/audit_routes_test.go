package httpapi

import (
	"net/url"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

func TestParseStreamFilter(t *testing.T) {
	now := time.Now()
	tests := []struct {
		query, lastID string
		head, after   int64
		code          string
	}{
		{"", "", 40, 40, ""},                           // live: from the head
		{"after=7", "", 40, 7, ""},                     // from a seq
		{"after=7", "12", 40, 12, ""},                  // Last-Event-ID wins: it is where the client got to
		{"min_risk=high&type=tool.*", "", 3, 3, ""},    // the search filters
		{"limit=5", "", 0, 0, warden.EInvalid},         // a stream has no limit
		{"newest=true", "", 0, 0, warden.EInvalid},     // nor newest
		{"", "x", 0, 0, warden.EInvalid},               // Last-Event-ID is a seq
		{"", "-1", 0, 0, warden.EInvalid},              //
		{"min_risk=", "", 0, 0, warden.EInvalid},       //
		{"min_risk=severe", "", 0, 0, warden.EInvalid}, //
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		f, err := ParseStreamFilter(q, tt.lastID, tt.head, now)
		if warden.ErrorCode(err) != tt.code {
			t.Errorf("%q %q: %v; want code %q", tt.query, tt.lastID, err, tt.code)
			continue
		}
		if err == nil && f.AfterSeq != tt.after {
			t.Errorf("%q %q: after %d; want %d", tt.query, tt.lastID, f.AfterSeq, tt.after)
		}
	}
	q, _ := url.ParseQuery("min_risk=high&newest=false")
	if f, err := ParseAuditFilter(q, now); err != nil || f.MinRisk != warden.RiskHigh || f.Newest {
		t.Fatalf("ParseAuditFilter: %+v %v", f, err)
	}
}

func FuzzParseStreamFilter(f *testing.F) {
	f.Add("agent=bot&min_risk=high", "42")
	f.Add("after=9&type=agent.*", "")
	f.Add("limit=1", "99999999999999999999")
	f.Fuzz(func(t *testing.T, query, lastID string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		fl, err := ParseStreamFilter(q, lastID, 10, time.Now())
		if err != nil && warden.ErrorCode(err) != warden.EInvalid {
			t.Fatalf("got %v", err)
		}
		if err == nil && (fl.AfterSeq < 0 || fl.Limit != 0 || fl.Newest || fl.MinRisk != "" && fl.MinRisk.Level() == 0) {
			t.Fatalf("accepted %+v", fl)
		}
	})
}
