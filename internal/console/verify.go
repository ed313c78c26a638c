package console

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// Verifier verifies the whole audit log, telling progress how many events it has checked as it
// goes (audit.Log).
type Verifier interface {
	VerifyProgress(ctx context.Context, progress func(checked int64)) (*apitype.VerifyReport, error)
	Head(ctx context.Context) (int64, error)
}

// Verification states.
const (
	verifyIdle    = "idle"    // none asked for since the server started
	verifyQueued  = "queued"  // asked for; the server's verification loop has not begun it
	verifyRunning = "running" // checking events
	verifyDone    = "done"    // finished: Report says whether the log is whole
	verifyFailed  = "failed"  // could not be done (not a broken log: that is done, not OK)
)

// verifyStatus is what the audit page shows and polls (GET /ui/audit/verify/status).
type verifyStatus struct {
	State   string                `json:"state"`
	By      string                `json:"by,omitempty"`
	Started time.Time             `json:"started,omitzero"`
	Checked int64                 `json:"checked"`
	Total   int64                 `json:"total"` // the log's head when the verification began
	Error   string                `json:"error,omitempty"`
	Report  *apitype.VerifyReport `json:"report,omitempty"`
}

// Active reports whether a verification is asked for or under way.
func (s verifyStatus) Active() bool { return s.State == verifyQueued || s.State == verifyRunning }

// verifications is the one verification of the audit log a server runs at a time, on a
// person's demand from the audit page; RunVerifications owns the goroutine that runs it.
type verifications struct {
	ask     chan struct{} // holds at most one request
	mu      sync.Mutex
	st      verifyStatus
	checked atomic.Int64
}

func newVerifications() *verifications {
	return &verifications{ask: make(chan struct{}, 1), st: verifyStatus{State: verifyIdle}}
}

// status is the current state, with the count of events checked so far.
func (v *verifications) status() verifyStatus {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := v.st
	if st.State == verifyRunning {
		st.Checked = v.checked.Load()
	}
	return st
}

// request asks for a verification; false when one is already asked for or under way.
func (v *verifications) request(by string, now time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.st.Active() {
		return false
	}
	v.st = verifyStatus{State: verifyQueued, By: by, Started: now}
	v.checked.Store(0)
	v.ask <- struct{}{} // never blocks: only an inactive state lets a request in, and the loop drains it before it runs
	return true
}

func (v *verifications) set(f func(st *verifyStatus)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	f(&v.st)
}

// RunVerifications runs the verifications people ask for from the audit page, one at a time,
// until ctx ends (which cancels the one under way).
func (c *Console) RunVerifications(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.verify.ask:
		}
		c.runVerification(ctx)
	}
}

func (c *Console) runVerification(ctx context.Context) {
	v := c.verify
	head, err := c.opt.Verifier.Head(ctx)
	if err == nil {
		v.set(func(st *verifyStatus) { st.State, st.Total = verifyRunning, head })
		var rep *apitype.VerifyReport
		rep, err = c.opt.Verifier.VerifyProgress(ctx, v.checked.Store)
		if err == nil {
			v.set(func(st *verifyStatus) { st.State, st.Checked, st.Report = verifyDone, rep.Events, rep })
			return
		}
	}
	c.opt.Log.Error("verifying the audit log from the console failed", "err", err)
	v.set(func(st *verifyStatus) {
		st.State, st.Checked, st.Error = verifyFailed, v.checked.Load(), warden.ErrorMessage(err)
	})
}

// auditVerify asks for a verification of the whole log (chain, checkpoints, the search copies)
// and goes back to the audit page, which shows its progress.
func (c *Console) auditVerify(w http.ResponseWriter, r *http.Request, v *visit) error {
	if c.opt.Verifier == nil {
		return warden.Errorf(warden.EUnavailable, "this server cannot verify its audit log")
	}
	c.verify.request(v.Person.Name, c.opt.Clock.Now())
	http.Redirect(w, r, "/ui/audit", http.StatusSeeOther)
	return nil
}

// auditVerifyStatus is the verification's state as JSON, for the audit page's script.
func (c *Console) auditVerifyStatus(w http.ResponseWriter, r *http.Request, v *visit) error {
	b, err := json.Marshal(c.verify.status())
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) // the browser may be gone
	return nil
}
