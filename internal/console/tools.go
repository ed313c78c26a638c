package console

import (
	"net/http"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
)

// toolRow is a tool with the state of its pinned manifests (MCP servers).
type toolRow struct {
	*warden.Tool
	Pinned, Held, Removed int
}

func (c *Console) tools(w http.ResponseWriter, r *http.Request, v *visit) error {
	ts, err := c.opt.Admin.Tools(r.Context())
	if err != nil {
		return err
	}
	rows := make([]toolRow, 0, len(ts))
	for _, t := range ts {
		row := toolRow{Tool: t}
		if t.Kind == warden.ToolMCP || t.Kind == warden.ToolMCPCommand {
			ms, err := c.opt.Admin.ToolManifests(r.Context(), t.Name)
			if err != nil {
				return err
			}
			for _, m := range ms {
				switch m.State {
				case warden.ManifestPinned:
					row.Pinned++
				case warden.ManifestHeld:
					row.Held++
				default:
					row.Removed++
				}
			}
		}
		rows = append(rows, row)
	}
	c.render(w, http.StatusOK, "tools", view{Title: "Tools", Me: v, Flash: flash(r.URL.Query()), Data: rows})
	return nil
}

func (c *Console) setTool(w http.ResponseWriter, r *http.Request, v *visit, enabled bool) error {
	t, rep, err := c.opt.Admin.SetToolEnabled(r.Context(), v.Person, r.PathValue("name"), enabled, strings.TrimSpace(r.PostForm.Get("reason")))
	if err != nil {
		return err
	}
	query := done("enabled", t.Name, -1)
	if !enabled {
		cancelled := 0
		if rep != nil {
			cancelled = rep.CallsCancelled
		}
		query = done("disabled", t.Name, cancelled)
	}
	http.Redirect(w, r, "/ui/tools?"+query, http.StatusSeeOther)
	return nil
}

func (c *Console) toolEnable(w http.ResponseWriter, r *http.Request, v *visit) error {
	return c.setTool(w, r, v, true)
}

func (c *Console) toolDisable(w http.ResponseWriter, r *http.Request, v *visit) error {
	return c.setTool(w, r, v, false)
}

// lockdownConfirm is the page before a lockdown: what it does, the reason and the minimum risk.
func (c *Console) lockdownConfirm(w http.ResponseWriter, r *http.Request, v *visit) error {
	c.render(w, http.StatusOK, "lockdown", view{Title: "Lockdown", Me: v, Data: lockdownPage{Lockdown: c.opt.Kill.State.Load().Lockdown()}})
	return nil
}

// lockdown starts a lockdown through the kill switch, as `warden lockdown` does.
func (c *Console) lockdown(w http.ResponseWriter, r *http.Request, v *visit) error {
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" || r.PostForm.Get("confirm") != "lockdown" {
		c.render(w, http.StatusBadRequest, "lockdown", view{Title: "Lockdown", Me: v,
			Error: "A reason is required, and the box confirming the lockdown must be ticked.", Data: lockdownPage{Lockdown: c.opt.Kill.State.Load().Lockdown()}})
		return nil
	}
	rep, err := c.opt.Kill.Lockdown(r.Context(), v.Person, reason, warden.Risk(r.PostForm.Get("min_risk")))
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "lockdown", view{Title: "Lockdown", Me: v, Flash: "Lockdown started.", Data: lockdownPage{c.opt.Kill.State.Load().Lockdown(), rep}})
	return nil
}

type lockdownPage struct {
	Lockdown warden.Lockdown
	Report   *apitype.KillReport
}
