package killswitch

import (
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// Agents returns every agent of the snapshot, ordered by name, each with the status, epoch and
// lifetime the kill state holds: the web console lists and counts them without reading (and
// decoding) every agent from the store on each page.
func (s *Snapshot) Agents() []*warden.Agent {
	out := make([]*warden.Agent, 0, len(s.agents))
	for _, st := range s.agents {
		if st.Agent == nil {
			continue
		}
		a := *st.Agent
		a.Status, a.Epoch, a.ExpiresAt, a.UpdatedAt = st.Status, st.Epoch, st.ExpiresAt, st.UpdatedAt
		out = append(out, &a)
	}
	slices.SortFunc(out, func(a, b *warden.Agent) int { return strings.Compare(a.Name, b.Name) })
	return out
}
