package cedar

// PermitsOf returns the permits whose principal scope names the agent (`principal ==
// Agent::"<agent>"` or `principal in` it): the grants the agent holds of its own. Permits for any
// principal are not among them; they are no one agent's to give up.
func (e *Engine) PermitsOf(agent string) []Policy {
	var out []Policy
	for _, p := range e.policies {
		if p.Effect != "permit" {
			continue
		}
		if name, ok := principalBucket(astOf(p.cedar).Principal); ok && name == agent {
			out = append(out, p.Policy)
		}
	}
	return out
}
