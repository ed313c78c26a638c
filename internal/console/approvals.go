package console

import (
	"net/http"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/approval"
)

// approvals is the queue of pending requests, each with its redacted arguments, their digest,
// the policies that asked, the agent's recent actions and the time left.
func (c *Console) approvals(w http.ResponseWriter, r *http.Request, v *visit) error {
	if c.opt.Approvals == nil {
		return warden.Errorf(warden.EUnavailable, "approvals are not served by this server")
	}
	list, err := c.opt.Approvals.List(r.Context(), warden.ApprovalPending)
	if err != nil {
		return err
	}
	c.renderApprovals(w, http.StatusOK, v, list, flash(r.URL.Query()), "")
	return nil
}

func (c *Console) renderApprovals(w http.ResponseWriter, status int, v *visit, list []*approval.Request, flash, errMsg string) {
	c.render(w, status, "approvals", view{Title: "Approvals", Me: v, Flash: flash, Error: errMsg, Data: list})
}

// decided answers a decision: back to the queue, or the queue with the service's refusal (a
// separation-of-duties refusal among them) shown above it.
func (c *Console) decided(w http.ResponseWriter, r *http.Request, v *visit, done string, err error) error {
	if err != nil {
		if warden.HTTPStatus(err) >= 500 {
			return err
		}
		list, lerr := c.opt.Approvals.List(r.Context(), warden.ApprovalPending)
		if lerr != nil {
			return lerr
		}
		c.renderApprovals(w, warden.HTTPStatus(err), v, list, "", warden.ErrorMessage(err))
		return nil
	}
	http.Redirect(w, r, "/ui/approvals?"+done, http.StatusSeeOther)
	return nil
}

func (c *Console) approve(w http.ResponseWriter, r *http.Request, v *visit) error {
	if c.opt.Approvals == nil {
		return warden.Errorf(warden.EUnavailable, "approvals are not served by this server")
	}
	a, err := c.opt.Approvals.Approve(r.Context(), v.Person, r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("note")))
	query := ""
	if err == nil {
		query = done(a.Status, a.ID, -1)
	}
	return c.decided(w, r, v, query, err)
}

func (c *Console) reject(w http.ResponseWriter, r *http.Request, v *visit) error {
	if c.opt.Approvals == nil {
		return warden.Errorf(warden.EUnavailable, "approvals are not served by this server")
	}
	a, err := c.opt.Approvals.Reject(r.Context(), v.Person, r.PathValue("id"), strings.TrimSpace(r.PostForm.Get("reason")))
	query := ""
	if err == nil {
		query = done(a.Status, a.ID, -1)
	}
	return c.decided(w, r, v, query, err)
}
