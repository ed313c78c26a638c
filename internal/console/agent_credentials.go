package console

import (
	"net/http"
	"strings"

	"github.com/wardenhq/warden"
)

// secretPage is the page that shows an agent's new client secret, once: it is not stored, not
// logged, and the page is no-store like every /ui page.
type secretPage struct {
	Agent  *warden.Agent
	Secret string
	Done   string // what gave the secret: "rotated" or "restored"
}

// rotate gives the agent a new client secret through the admin service, as `warden agent
// rotate-secret` does; the box confirming it must be ticked, since the old secret stops working.
func (c *Console) rotate(w http.ResponseWriter, r *http.Request, v *visit) error {
	name := r.PathValue("name")
	if r.PostForm.Get("confirm") != "rotate" {
		return warden.Errorf(warden.EInvalid, "tick the box confirming that %s's current secret and tokens stop working, then rotate", name)
	}
	a, secret, err := c.opt.Admin.RotateSecret(r.Context(), v.Person, name)
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "secret", view{Title: "New secret for " + a.Name, Me: v, Data: secretPage{a, secret, "rotated"}})
	return nil
}

// restore makes a killed agent active again with a new secret through the kill switch, as
// `warden agent restore` does; a reason is required.
func (c *Console) restore(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, secret, err := c.opt.Admin.RestoreAgent(r.Context(), v.Person, c.opt.Kill, r.PathValue("name"), strings.TrimSpace(r.PostForm.Get("reason")))
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "secret", view{Title: "New secret for " + a.Name, Me: v, Data: secretPage{a, secret, "restored"}})
	return nil
}

// renew extends the agent's identity through the admin service, within the limits of `warden
// agent renew` (the default lifetime when the field is empty).
func (c *Console) renew(w http.ResponseWriter, r *http.Request, v *visit) error {
	a, err := c.opt.Admin.Renew(r.Context(), v.Person, r.PathValue("name"), strings.TrimSpace(r.PostForm.Get("ttl")))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/ui/agents/"+a.Name+"?"+done("renewed", a.Name, -1), http.StatusSeeOther)
	return nil
}

// lift ends the lockdown through the kill switch, as `warden lockdown lift` does: a reason and
// the confirmation box are required.
func (c *Console) lift(w http.ResponseWriter, r *http.Request, v *visit) error {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" || r.PostForm.Get("confirm") != "lift" {
		c.render(w, http.StatusBadRequest, "lockdown", view{Title: "Lockdown", Me: v,
			Error: "A reason is required, and the box confirming the lift must be ticked.", Data: lockdownPage{Lockdown: c.opt.Kill.State.Load().Lockdown()}})
		return nil
	}
	if _, err := c.opt.Kill.Lift(r.Context(), v.Person, reason); err != nil {
		return err
	}
	c.render(w, http.StatusOK, "lockdown", view{Title: "Lockdown", Me: v, Flash: "Lockdown lifted.", Data: lockdownPage{Lockdown: c.opt.Kill.State.Load().Lockdown()}})
	return nil
}
