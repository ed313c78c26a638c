package console

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/mcpgw/pin"
	"github.com/wardenhq/warden/internal/scan"
)

// manifestRow is one MCP tool's pin as `warden tool review` shows it: for a held one, the pinned
// and the listed digests, the difference and the scanner's findings.
type manifestRow struct {
	*warden.ToolManifest
	Changes  []pin.FieldChange
	Findings []scan.Finding
}

type manifestsPage struct {
	Tool string
	Rows []manifestRow
	Held int
}

// manifests is a server's pinned manifests, held ones first, from the admin service's
// ToolManifests (credentials redacted), the same as `warden tool review`.
func (c *Console) manifests(w http.ResponseWriter, r *http.Request, v *visit) error {
	return c.renderManifests(w, r, v, http.StatusOK, "", "")
}

func (c *Console) renderManifests(w http.ResponseWriter, r *http.Request, v *visit, status int, flashMsg, errMsg string) error {
	tool := r.PathValue("name")
	ms, err := c.opt.Admin.ToolManifests(r.Context(), tool)
	if err != nil {
		return err
	}
	d := manifestsPage{Tool: tool}
	var held, rest []manifestRow
	for _, m := range ms {
		row := manifestRow{ToolManifest: m}
		// The stored difference and findings are warden's own JSON; a row that does not decode
		// still shows its digests, and accepting it stays bound to the digest shown.
		_ = json.Unmarshal(m.Diff, &row.Changes)
		_ = json.Unmarshal(m.Findings, &row.Findings)
		if m.State == warden.ManifestHeld {
			held = append(held, row)
		} else {
			rest = append(rest, row)
		}
	}
	d.Rows, d.Held = append(held, rest...), len(held)
	c.render(w, status, "manifests", view{Title: "Manifests of " + tool, Me: v, Flash: flashMsg, Error: errMsg, Data: d})
	return nil
}

// acceptManifest pins one held manifest through the admin service, as `warden tool accept NAME
// --tool T --digest D --reason R` does: bound to the digest the page showed, so a server that
// changed the manifest again since is refused (409) and must be reviewed again.
func (c *Console) acceptManifest(w http.ResponseWriter, r *http.Request, v *visit) error {
	tool, name, digest := r.PathValue("name"), r.PostForm.Get("tool"), r.PostForm.Get("digest")
	if name == "" || digest == "" {
		return warden.Errorf(warden.EInvalid, "an acceptance names the MCP tool and the digest reviewed")
	}
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if reason == "" {
		return c.renderManifests(w, r, v, http.StatusBadRequest, "", "A reason is required to accept a manifest.")
	}
	accepted, err := c.opt.Admin.AcceptManifests(r.Context(), v.Person, tool, name, digest, reason)
	if err != nil {
		return err
	}
	return c.renderManifests(w, r, v, http.StatusOK, "Pinned "+tool+"/"+accepted[0].Name+" at "+accepted[0].Digest+".", "")
}
