package admin

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/route"
)

// maxActionLabels bounds the actions of one tool that carry flow labels of their own: more than
// any real tool has, few enough that a tool's row and its view stay small.
const maxActionLabels = 1024

// flowKeys are the flow labels in the order people read them.
var flowKeys = []string{warden.LabelOutput, warden.LabelData, warden.LabelEffect}

// validateFlowLabels checks the flow labels of a built tool: the keys output, data and effect
// of its Labels, and its ActionLabels — each action one the tool can have, only flow labels,
// valid values. A label on an action that cannot be called would silently label nothing.
func validateFlowLabels(t *warden.Tool) error {
	for _, k := range flowKeys {
		if v, ok := t.Labels[k]; ok {
			if err := warden.ValidateFlowLabel(k, v); err != nil {
				return warden.Errorf(warden.EInvalid, "tool %s: %s", t.Name, warden.ErrorMessage(err))
			}
		}
	}
	if len(t.ActionLabels) == 0 {
		return nil
	}
	if len(t.ActionLabels) > maxActionLabels {
		return warden.Errorf(warden.EInvalid, "tool %s: flow labels for %d actions; at most %d", t.Name, len(t.ActionLabels), maxActionLabels)
	}
	routeActions, err := routeActionsOf(t)
	if err != nil {
		return err
	}
	for _, action := range slices.Sorted(maps.Keys(t.ActionLabels)) {
		if err := labelledAction(t, action, routeActions); err != nil {
			return err
		}
		labels := t.ActionLabels[action]
		if len(labels) == 0 {
			return warden.Errorf(warden.EInvalid, "tool %s, action %s: no flow labels; give output, data or effect", t.Name, action)
		}
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			if err := warden.ValidateFlowLabel(k, labels[k]); err != nil {
				return warden.Errorf(warden.EInvalid, "tool %s, action %s: %s", t.Name, action, warden.ErrorMessage(err))
			}
		}
	}
	return nil
}

// labelledAction checks that a tool can have the action a flow label names: for an HTTP tool
// an action of its routes, for an MCP server a name the gateway would call or decide.
func labelledAction(t *warden.Tool, action string, routeActions []string) error {
	switch t.Kind {
	case warden.ToolHTTP, warden.ToolDecisionOnly:
		if err := warden.ValidateAction(action); err != nil {
			return warden.Errorf(warden.EInvalid, "tool %s: action_labels: %s", t.Name, warden.ErrorMessage(err))
		}
		if !slices.Contains(routeActions, action) {
			return warden.Errorf(warden.EInvalid, "tool %s: action_labels name %q, which %s (%s)", t.Name, action, noSuchAction(t), strings.Join(routeActions, ", "))
		}
	case warden.ToolMCP, warden.ToolMCPCommand:
		if slices.Contains(mcpMethodActions, action) {
			return nil
		}
		if err := warden.ValidateMCPToolName(action); err != nil {
			return warden.Errorf(warden.EInvalid, "tool %s: action_labels: %s, nor one of %s", t.Name, warden.ErrorMessage(err), strings.Join(mcpMethodActions, ", "))
		}
	default:
		return warden.Errorf(warden.EInvalid, "tool %s: only the actions of HTTP and MCP tools take flow labels", t.Name)
	}
	return nil
}

// noSuchAction says why an HTTP or decision-only tool cannot have an action.
func noSuchAction(t *warden.Tool) string {
	if t.Kind == warden.ToolDecisionOnly {
		return "the tool does not declare"
	}
	return "no route of the tool has"
}

// routeActionsOf returns the actions of an HTTP tool's routes, in route order without repeats,
// or a decision-only tool's declared actions; nil for other tools.
func routeActionsOf(t *warden.Tool) ([]string, error) {
	if t.Kind == warden.ToolDecisionOnly {
		out := make([]string, len(t.Actions))
		for i, a := range t.Actions {
			out[i] = a.Name
		}
		return out, nil
	}
	if t.Kind != warden.ToolHTTP {
		return nil, nil
	}
	var out []string
	for _, text := range t.Routes {
		r, err := route.Parse(text)
		if err != nil {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: %s", t.Name, warden.ErrorMessage(err))
		}
		if !slices.Contains(out, r.Action) {
			out = append(out, r.Action)
		}
	}
	return out, nil
}

// ToolLabelsRequest is the wire type apitype.ToolLabelsRequest; see there.
type ToolLabelsRequest = apitype.ToolLabelsRequest

// errLabelsUnchanged ends a label change that changes nothing before anything is written.
var errLabelsUnchanged = errors.New("labels unchanged")

// SetToolLabels sets and unsets flow labels of a tool or of one of its actions. The change is
// announced to the fleet as every tool change is, so that each replica's gateway labels the
// tool's calls alike, and recorded with the labels before and after. A change that changes
// nothing is neither announced nor recorded.
func (s *Service) SetToolLabels(ctx context.Context, p *warden.Principal, name string, req ToolLabelsRequest) (*apitype.ToolView, error) {
	if name == warden.EgressTool.Name {
		return nil, warden.Errorf(warden.EInvalid, "the built-in egress tool is not labelled: its connections are effect=external and its output is not read as text")
	}
	if err := warden.ValidateName("tool", name); err != nil {
		return nil, err
	}
	if len(req.Set) == 0 && len(req.Unset) == 0 {
		return nil, warden.Errorf(warden.EInvalid, "give the labels to set (KEY=VALUE) or to unset (--unset KEY)")
	}
	for _, k := range slices.Sorted(maps.Keys(req.Set)) {
		if err := warden.ValidateFlowLabel(k, req.Set[k]); err != nil {
			return nil, err
		}
	}
	for _, k := range req.Unset {
		if !warden.IsFlowLabel(k) {
			return nil, warden.Errorf(warden.EInvalid, "unknown flow label %q: use output, data or effect", k)
		}
		if _, ok := req.Set[k]; ok {
			return nil, warden.Errorf(warden.EInvalid, "label %s is both set and unset", k)
		}
	}
	scope := "tool"
	if req.Action != "" {
		scope = "action " + req.Action
	}
	var before, after map[string]string
	_, err := s.commit(ctx, false, func(ctx context.Context, announce killswitch.Announce) error {
		_, err := s.updateTool(ctx, announce, name, func(t *warden.Tool) error {
			if req.Action != "" {
				routeActions, err := routeActionsOf(t)
				if err != nil {
					return err
				}
				if err := labelledAction(t, req.Action, routeActions); err != nil {
					return err
				}
			}
			before = flowLabelsOf(t, req.Action)
			next := maps.Clone(before)
			maps.Copy(next, req.Set)
			for _, k := range req.Unset {
				delete(next, k)
			}
			after = next
			if maps.Equal(before, after) {
				return errLabelsUnchanged
			}
			setFlowLabels(t, req.Action, after)
			return validateFlowLabels(t)
		})
		return err
	})
	switch {
	case errors.Is(err, errLabelsUnchanged):
	case err != nil:
		return nil, err
	default:
		msg := scope + ": " + fmtFlowLabels(before) + " -> " + fmtFlowLabels(after)
		if err := s.audit.Append(ctx, &warden.AuditEvent{
			Type:     warden.EventToolLabels,
			Actor:    humanActor(ctx, p),
			Target:   warden.EventTarget{Tool: name, Action: req.Action, Resource: "tool:" + name},
			Decision: warden.EventDecision{Effect: warden.EffectAllow, Message: msg},
			Outcome:  warden.EventOutcome{Status: warden.StatusOK},
		}); err != nil {
			return nil, err
		}
	}
	return s.ToolView(ctx, name)
}

// flowLabelsOf returns a copy of the flow labels set on a tool (action "") or on one action.
func flowLabelsOf(t *warden.Tool, action string) map[string]string {
	out := map[string]string{}
	src := t.Labels
	if action != "" {
		src = t.ActionLabels[action]
	}
	for _, k := range flowKeys {
		if v, ok := src[k]; ok {
			out[k] = v
		}
	}
	return out
}

// setFlowLabels replaces the flow labels of a tool (action "") or of one action with labels,
// keeping the tool's other labels. An action left with none is dropped.
func setFlowLabels(t *warden.Tool, action string, labels map[string]string) {
	if action == "" {
		next := maps.Clone(t.Labels)
		if next == nil {
			next = map[string]string{}
		}
		for _, k := range flowKeys {
			delete(next, k)
		}
		maps.Copy(next, labels)
		t.Labels = next
		return
	}
	next := maps.Clone(t.ActionLabels)
	if next == nil {
		next = map[string]map[string]string{}
	}
	if len(labels) == 0 {
		delete(next, action)
	} else {
		next[action] = labels
	}
	t.ActionLabels = next
}

// fmtFlowLabels writes flow labels as "output=untrusted effect=external", "(none)" for none.
func fmtFlowLabels(labels map[string]string) string {
	var parts []string
	for _, k := range flowKeys {
		if v, ok := labels[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return "(none)"
	}
	return strings.Join(parts, " ")
}

// ToolView returns a tool with the flow labels of its actions resolved as the gateway resolves
// them: from the admin's labels, an MCP tool's pinned annotations, or the defaults.
func (s *Service) ToolView(ctx context.Context, name string) (*apitype.ToolView, error) {
	t, err := s.Tool(ctx, name)
	if err != nil {
		return nil, err
	}
	var manifests []*warden.ToolManifest
	if t.Kind == warden.ToolMCP || t.Kind == warden.ToolMCPCommand {
		if manifests, err = s.store.ToolManifests(ctx, name); err != nil {
			return nil, err
		}
	}
	return &apitype.ToolView{Tool: t, Flow: ResolveToolFlow(t, manifests)}, nil
}

// ResolveToolFlow resolves the flow labels of each action of a tool warden knows of, as the
// gateway labels its calls: an HTTP tool's route actions, each with one method — a reading one
// only when every route of the action reads, since the gateway labels an action, not a route;
// an MCP server's tools from their pinned manifests' annotations, the actions an admin labelled,
// and a last row for any other action, which the tool's labels or the defaults decide.
func ResolveToolFlow(t *warden.Tool, manifests []*warden.ToolManifest) []apitype.ActionFlow {
	out := []apitype.ActionFlow{}
	switch t.Kind {
	case warden.ToolHTTP:
		var routes []*route.Route
		for _, text := range t.Routes {
			if r, err := route.Parse(text); err == nil {
				routes = append(routes, r)
			}
		}
		seen := map[string]bool{}
		for _, r := range routes {
			if seen[r.Action] {
				continue
			}
			seen[r.Action] = true
			out = append(out, apitype.ActionFlow{Action: r.Action, Method: gateway.RouteMethod(t.Routes, r.Action), Labels: gateway.FlowLabels(t, r.Action, nil)})
		}
	case warden.ToolDecisionOnly:
		for _, a := range t.Actions {
			out = append(out, apitype.ActionFlow{Action: a.Name, Labels: gateway.FlowLabels(t, a.Name, nil)})
		}
	case warden.ToolMCP, warden.ToolMCPCommand:
		byName := map[string]*warden.ToolManifest{}
		for _, m := range manifests {
			byName[m.Name] = m
		}
		names := slices.Collect(maps.Keys(byName))
		for a := range t.ActionLabels {
			if _, ok := byName[a]; !ok {
				names = append(names, a)
			}
		}
		slices.Sort(names)
		for _, n := range names {
			row := apitype.ActionFlow{Action: n}
			var manifest []byte
			if m := byName[n]; m != nil {
				row.Manifest, manifest = m.State, m.Manifest
			}
			row.Labels = gateway.FlowLabels(t, n, manifest)
			out = append(out, row)
		}
		out = append(out, apitype.ActionFlow{Other: true, Labels: gateway.FlowLabels(t, "", nil)})
	}
	return out
}
