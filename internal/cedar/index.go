package cedar

import (
	"strings"

	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

// index narrows a request to the policies whose scope can match it, so that a decision costs the
// policies about this agent and action, not the whole set. cedar-go evaluates every policy it is
// given one after another; with thousands of grants, almost all for other agents, that would be
// the whole cost of a decision.
//
// A policy lands in one principal bucket and one or more action buckets. A bucket is a sorted list
// of policy positions. The classification only ever narrows on what the scope alone decides; any
// scope it does not understand goes to the wildcard bucket, which every request evaluates, so
// the index can make evaluation cheaper but never different. index_test.go checks this against
// evaluating the full set.
type index struct {
	byAgent  map[string]*actionIndex // principal == / in Agent::"name"
	anyAgent actionIndex             // every other principal scope
}

type actionIndex struct {
	byAction map[string][]int32 // action == / in Action::"<tool>:<action>", keyed by the full id
	byTool   map[string][]int32 // action in Action::"<tool>"
	any      []int32            // every other action scope
}

// add files policy pos under the buckets its scope selects.
func (ix *index) add(pos int32, p *xast.Policy) {
	ai := &ix.anyAgent
	if agent, ok := principalBucket(p.Principal); ok {
		if ix.byAgent == nil {
			ix.byAgent = make(map[string]*actionIndex)
		}
		ai = ix.byAgent[agent]
		if ai == nil {
			ai = &actionIndex{}
			ix.byAgent[agent] = ai
		}
	}
	actions, tools, ok := actionBuckets(p.Action)
	if !ok {
		ai.any = append(ai.any, pos)
		return
	}
	for _, a := range actions {
		ai.byAction = addTo(ai.byAction, a, pos)
	}
	for _, t := range tools {
		ai.byTool = addTo(ai.byTool, t, pos)
	}
}

func addTo(m map[string][]int32, key string, pos int32) map[string][]int32 {
	if m == nil {
		m = make(map[string][]int32)
	}
	// A scope such as `in [A, A]` names a bucket twice; the policy is filed once.
	if l := m[key]; len(l) > 0 && l[len(l)-1] == pos {
		return m
	}
	m[key] = append(m[key], pos)
	return m
}

// principalBucket returns the agent a principal scope pins. `principal in Agent::"x"` pins x as
// surely as `==`, because agents have no parents in warden's entity model; if they ever gain
// some, this is the line to change.
func principalBucket(s xast.IsPrincipalScopeNode) (string, bool) {
	switch s := s.(type) {
	case xast.ScopeTypeEq:
		if s.Entity.Type == typeAgent {
			return string(s.Entity.ID), true
		}
	case xast.ScopeTypeIn:
		if s.Entity.Type == typeAgent {
			return string(s.Entity.ID), true
		}
	case xast.ScopeTypeIsIn:
		if s.Type == typeAgent && s.Entity.Type == typeAgent {
			return string(s.Entity.ID), true
		}
	}
	return "", false
}

// actionBuckets returns the action ids and tool groups an action scope is limited to, or ok false
// for a scope that may match any action. An action "<tool>:<name>" has no descendants, so `in` it
// means `==` it; a group "<tool>" holds every action of the tool.
func actionBuckets(s xast.IsActionScopeNode) (actions, tools []string, ok bool) {
	var uids []string
	switch s := s.(type) {
	case xast.ScopeTypeEq:
		if s.Entity.Type != typeAction {
			return nil, nil, false
		}
		// == a group matches no request (a request's action always has a ':'), so filing it as
		// an action id that no request looks up is exact.
		return []string{string(s.Entity.ID)}, nil, true
	case xast.ScopeTypeIn:
		if s.Entity.Type != typeAction {
			return nil, nil, false
		}
		uids = []string{string(s.Entity.ID)}
	case xast.ScopeTypeInSet:
		for _, e := range s.Entities {
			if e.Type != typeAction {
				return nil, nil, false
			}
			uids = append(uids, string(e.ID))
		}
	default:
		return nil, nil, false
	}
	for _, id := range uids {
		if strings.Contains(id, ":") {
			actions = append(actions, id)
		} else {
			tools = append(tools, id)
		}
	}
	return actions, tools, true
}

// candidates returns, in ascending order and without repeats, the positions of the policies whose
// scope may match a request of agent on actionID of tool. The result may share memory with the
// index and must not be changed.
func (ix *index) candidates(agent, tool, actionID string) []int32 {
	var lists [6][]int32
	n := 0
	for _, ai := range [2]*actionIndex{ix.byAgent[agent], &ix.anyAgent} {
		if ai == nil {
			continue
		}
		for _, l := range [3][]int32{ai.byAction[actionID], ai.byTool[tool], ai.any} {
			if len(l) > 0 {
				lists[n] = l
				n++
			}
		}
	}
	switch n {
	case 0:
		return nil
	case 1:
		return lists[0]
	}
	return mergeSorted(lists[:n])
}

// mergeSorted merges ascending lists into one ascending list without repeats. There are at most
// six lists, so picking the smallest head each step is as fast as a heap and simpler.
func mergeSorted(lists [][]int32) []int32 {
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	out := make([]int32, 0, total)
	heads := make([]int, len(lists))
	for {
		best := -1
		for i, l := range lists {
			if heads[i] < len(l) && (best < 0 || l[heads[i]] < lists[best][heads[best]]) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		v := lists[best][heads[best]]
		heads[best]++
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
}
