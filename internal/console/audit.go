package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/httpapi"
)

// auditPageSize is how many events one page of the audit search shows.
const auditPageSize = 50

type auditPage struct {
	Query      url.Values
	Events     []*warden.AuditEvent
	Older      string // the next page back in time; "" at the start of the log
	Checkpoint *warden.AuditCheckpoint
	Verify     verifyStatus
}

// auditSearch is the audit log's search: the /v1/audit/events filters (agent, tool, type,
// decision, since, until; empty fields ignored), newest first, a page at a time going back.
func (c *Console) auditSearch(w http.ResponseWriter, r *http.Request, v *visit) error {
	d, err := c.auditData(r)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "audit", view{Title: "Audit log", Me: v, Data: d})
	return nil
}

func (c *Console) auditData(r *http.Request) (*auditPage, error) {
	q := url.Values{}
	for _, k := range []string{"agent", "tool", "type", "decision", "since", "until", "before"} {
		if val := strings.TrimSpace(r.URL.Query().Get(k)); val != "" {
			q.Set(k, val)
		}
	}
	f, err := httpapi.ParseAuditFilter(q, c.opt.Clock.Now())
	if err != nil {
		return nil, err
	}
	f.Newest, f.Limit = true, auditPageSize
	evs, err := c.opt.Store.AuditEvents(r.Context(), f)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	d := &auditPage{Query: q, Events: evs, Verify: c.verify.status()}
	if len(evs) == auditPageSize && evs[len(evs)-1].Seq > 1 {
		older := url.Values{}
		for k, vs := range q {
			older[k] = vs
		}
		older.Set("before", strconv.FormatInt(evs[len(evs)-1].Seq, 10))
		d.Older = "/ui/audit?" + older.Encode()
	}
	if c.opt.Audit != nil {
		cp, err := c.opt.Audit.LatestCheckpoint(r.Context())
		if err != nil && warden.ErrorCode(err) != warden.ENotFound {
			return nil, err
		}
		d.Checkpoint = cp
	}
	return d, nil
}

// auditEvent shows one event as JSON.
func (c *Console) auditEvent(w http.ResponseWriter, r *http.Request, v *visit) error {
	seq, err := strconv.ParseInt(r.PathValue("seq"), 10, 64)
	if err != nil || seq < 1 {
		return warden.Errorf(warden.EInvalid, "an event is named by its seq, a positive number")
	}
	evs, err := c.opt.Store.AuditEvents(r.Context(), warden.AuditFilter{AfterSeq: seq - 1, Limit: 1})
	if err != nil {
		return err
	}
	if len(evs) == 0 || evs[0].Seq != seq {
		return warden.Errorf(warden.ENotFound, "no audit event %d (it may have been pruned)", seq)
	}
	b, err := json.MarshalIndent(evs[0], "", "  ")
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "event", view{Title: "Audit event " + r.PathValue("seq"), Me: v, Data: struct {
		Event *warden.AuditEvent
		JSON  string
	}{evs[0], string(b)}})
	return nil
}
