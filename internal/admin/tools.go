package admin

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/egress"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/gateway"
	"github.com/wardenhq/warden/internal/killswitch"
	"github.com/wardenhq/warden/internal/route"
)

// ToolSpec is the wire type apitype.ToolSpec; see there.
type ToolSpec = apitype.ToolSpec

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// ToolOf builds the tool a spec declares, validating every field.
func ToolOf(spec ToolSpec) (*warden.Tool, error) {
	if err := warden.ValidateName("tool", spec.Name); err != nil {
		return nil, err
	}
	if spec.Name == warden.EgressTool.Name {
		return nil, warden.Errorf(warden.EInvalid, "the tool name %q is reserved for the built-in egress proxy", spec.Name)
	}
	t := &warden.Tool{Name: spec.Name, Secret: spec.Secret, Inject: spec.Inject, Labels: spec.Labels, SensitiveArgs: spec.SensitiveArgs}
	kinds := 0
	for _, s := range []string{spec.MCP, spec.MCPCommand, spec.HTTP, spec.NPM} {
		if s != "" {
			kinds++
		}
	}
	if len(spec.Actions) > 0 {
		kinds++
	}
	if kinds != 1 {
		return nil, warden.Errorf(warden.EInvalid, "tool %s: give exactly one of --mcp URL, --mcp-command CMD, --http URL, --npm NAME@VERSION and --decision-only with its --action list", spec.Name)
	}
	var err error
	switch {
	case len(spec.Actions) > 0:
		t.Kind = warden.ToolDecisionOnly
		err = decisionOnlyActions(t, spec)
	case spec.MCP != "":
		t.Kind, t.URL = warden.ToolMCP, spec.MCP
		err = validateUpstreamURL(spec.MCP)
	case spec.HTTP != "":
		t.Kind, t.URL = warden.ToolHTTP, spec.HTTP
		err = validateUpstreamURL(spec.HTTP)
	case spec.NPM != "":
		err = npmTool(t, spec)
	default:
		t.Kind = warden.ToolMCPCommand
		t.Command, err = SplitCommand(spec.MCPCommand)
	}
	if err != nil {
		return nil, warden.Errorf(warden.EInvalid, "tool %s: %s", spec.Name, warden.ErrorMessage(err))
	}
	if spec.NPM == "" && (spec.Bin != "" || spec.AllowUnsigned || spec.UnsignedReason != "") {
		return nil, warden.Errorf(warden.EInvalid, "tool %s: --bin and --allow-unsigned are for --npm packages", spec.Name)
	}
	if t.Risk, err = warden.ParseRisk(spec.Risk); err != nil {
		return nil, warden.Errorf(warden.EInvalid, "tool %s: %s", spec.Name, warden.ErrorMessage(err))
	}
	if err := validateToolCredentials(t, spec); err != nil {
		return nil, err
	}
	if len(spec.Routes) > 0 && t.Kind != warden.ToolHTTP {
		return nil, warden.Errorf(warden.EInvalid, "tool %s: routes are for HTTP tools; an MCP server's actions are its tools", spec.Name)
	}
	if t.Kind == warden.ToolHTTP {
		if len(spec.Routes) == 0 {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: an HTTP tool needs at least one --route 'METHOD /path -> action [resource]'; a request that matches no route is denied", spec.Name)
		}
		if _, err := route.Compile(spec.Routes); err != nil {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: %s", spec.Name, warden.ErrorMessage(err))
		}
		t.Routes = spec.Routes
	}
	for k, v := range spec.Labels {
		if !labelKeyRE.MatchString(k) || len(v) > maxLabelValue {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: invalid label %q", spec.Name, k)
		}
	}
	if len(spec.ActionLabels) > 0 {
		if t.ActionLabels == nil {
			t.ActionLabels = map[string]map[string]string{}
		}
		for a, l := range spec.ActionLabels {
			if _, dup := t.ActionLabels[a]; dup {
				return nil, warden.Errorf(warden.EInvalid, "tool %s: action %s has labels both in actions: and action_labels:; give them once", spec.Name, a)
			}
			t.ActionLabels[a] = l
		}
	}
	if err := validateFlowLabels(t); err != nil {
		return nil, err
	}
	for _, a := range spec.SensitiveArgs {
		if a == "" || len(a) > 128 {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: invalid sensitive argument name %q", spec.Name, a)
		}
	}
	if t.Approval, err = approvalActions(spec); err != nil {
		return nil, err
	}
	if t.Sandbox, err = toolSandbox(t, spec); err != nil {
		return nil, err
	}
	return t, nil
}

// maxToolActions bounds the actions a decision-only tool declares.
const maxToolActions = 1000

// decisionOnlyActions builds the declared actions of a decision-only tool: each a valid action
// name, once, with a valid risk, flow labels and input schema. Their labels become the tool's
// ActionLabels, checked with the rest.
func decisionOnlyActions(t *warden.Tool, spec ToolSpec) error {
	if len(spec.Actions) > maxToolActions {
		return warden.Errorf(warden.EInvalid, "%d actions; at most %d", len(spec.Actions), maxToolActions)
	}
	if len(spec.Routes) > 0 || spec.Secret != "" || len(spec.SecretEnv) > 0 {
		return warden.Errorf(warden.EInvalid, "a decision-only tool is never reached: it takes no routes and no secret")
	}
	for _, as := range spec.Actions {
		if err := warden.ValidateAction(as.Name); err != nil {
			return err
		}
		if t.Action(as.Name) != nil {
			return warden.Errorf(warden.EInvalid, "action %s is declared twice", as.Name)
		}
		a := warden.ToolAction{Name: as.Name}
		if as.Risk != "" {
			r, err := warden.ParseRisk(as.Risk)
			if err != nil {
				return warden.Errorf(warden.EInvalid, "action %s: %s", as.Name, warden.ErrorMessage(err))
			}
			a.Risk = r
		}
		if as.InputSchema != nil {
			raw, err := cedar.ParseInputSchema(as.InputSchema)
			if err != nil {
				return warden.Errorf(warden.EInvalid, "action %s: input_schema: %s", as.Name, warden.ErrorMessage(err))
			}
			a.InputSchema = raw
		}
		if len(as.Labels) > 0 {
			if t.ActionLabels == nil {
				t.ActionLabels = map[string]map[string]string{}
			}
			t.ActionLabels[as.Name] = as.Labels
		}
		t.Actions = append(t.Actions, a)
	}
	return nil
}

// toolSandbox validates what loosens a local command's sandbox.
func toolSandbox(t *warden.Tool, spec ToolSpec) (*warden.ToolSandbox, error) {
	if len(spec.ReadOnly) == 0 && len(spec.AllowHosts) == 0 {
		return nil, nil
	}
	if t.Kind != warden.ToolMCPCommand {
		return nil, warden.Errorf(warden.EInvalid, "tool %s: --ro and --allow-host are for a local command (--mcp-command)", spec.Name)
	}
	for _, p := range spec.ReadOnly {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: --ro %q: give an absolute, clean path other than /", spec.Name, p)
		}
	}
	for _, h := range spec.AllowHosts {
		if _, err := egress.ParseHostPattern(h); err != nil {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: --allow-host %s", spec.Name, err)
		}
	}
	return &warden.ToolSandbox{ReadOnly: spec.ReadOnly, AllowHosts: spec.AllowHosts}, nil
}

func validateToolCredentials(t *warden.Tool, spec ToolSpec) error {
	if (spec.Secret == "") != (spec.Inject == "") {
		return warden.Errorf(warden.EInvalid, "tool %s: --secret and --inject go together: the secret and the header it is injected into", spec.Name)
	}
	if spec.Secret != "" {
		if t.Kind == warden.ToolMCPCommand {
			return warden.Errorf(warden.EInvalid, "tool %s: a local command gets secrets through --secret-env VAR=SECRET, not a header", spec.Name)
		}
		if err := warden.ValidateName("secret", spec.Secret); err != nil {
			return err
		}
		if _, _, err := gateway.ParseInject(spec.Inject); err != nil {
			return err
		}
	}
	if len(spec.SecretEnv) > 0 {
		if t.Kind != warden.ToolMCPCommand {
			return warden.Errorf(warden.EInvalid, "tool %s: --secret-env is for local commands (--mcp-command)", spec.Name)
		}
		for env, secret := range spec.SecretEnv {
			if !envNameRE.MatchString(env) {
				return warden.Errorf(warden.EInvalid, "tool %s: invalid environment variable name %q", spec.Name, env)
			}
			if err := warden.ValidateName("secret", secret); err != nil {
				return err
			}
		}
		t.SecretEnv = spec.SecretEnv
	}
	return nil
}

func validateUpstreamURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return warden.Errorf(warden.EInvalid, "upstream %q must be an http(s) URL", s)
	case u.User != nil:
		return warden.Errorf(warden.EInvalid, "upstream URLs must not carry credentials; store them with 'warden secret set' and use --secret/--inject")
	case u.RawQuery != "" || u.Fragment != "":
		return warden.Errorf(warden.EInvalid, "upstream %q must not have a query or fragment", s)
	}
	return nil
}

// SplitCommand splits a command line into words: spaces separate, single and double quotes
// group, a backslash escapes the next character. No shell is involved at any point.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, c := range s {
		switch {
		case escaped:
			cur.WriteRune(c)
			escaped = false
		case c == '\\' && quote != '\'':
			escaped, inWord = true, true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\n' || c == '\r' || c == 0:
			return nil, warden.Errorf(warden.EInvalid, "the command must be one line")
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, warden.Errorf(warden.EInvalid, "unterminated quote or escape in command %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, warden.Errorf(warden.EInvalid, "the command is empty")
	}
	return words, nil
}

// AddTool registers a tool. Its secret must exist, so that a typo is caught now rather than
// at the first call.
func (s *Service) AddTool(ctx context.Context, p *warden.Principal, spec ToolSpec) (*warden.Tool, error) {
	t, err := ToolOf(spec)
	if err != nil {
		return nil, err
	}
	if err := s.checkSecrets(ctx, t); err != nil {
		return nil, err
	}
	if spec.NPM != "" {
		// The name must be free before anything is installed into its workspace.
		if _, err := s.store.Tool(ctx, t.Name); warden.ErrorCode(err) != warden.ENotFound {
			if err == nil {
				err = warden.Errorf(warden.EConflict, "tool %q already exists", t.Name)
			}
			return nil, err
		}
		if err := s.pinNPM(ctx, p, t, spec); err != nil {
			return nil, err
		}
	}
	if err := s.pinPackage(t); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	t.CreatedAt, t.UpdatedAt = now, now
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	if err := s.checkWith(ctx, func(tools []*warden.Tool) []*warden.Tool { return append(tools, t) }); err != nil {
		return nil, err
	}
	_, err = s.commit(ctx, false, func(ctx context.Context, announce killswitch.Announce) error {
		if err := s.store.CreateTool(ctx, t); err != nil {
			return err
		}
		s.reloadRegistry(ctx, t.Name)
		announce(fleet.TopicTool, t.Name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, s.event(ctx, p, warden.EventToolAdd, "tool:"+t.Name, string(t.Kind)+" "+toolTarget(t))
}

func toolTarget(t *warden.Tool) string {
	if t.Package != nil && t.Package.Source == warden.PackageNPM {
		return npmTarget(t.Package)
	}
	if t.Kind == warden.ToolMCPCommand {
		if t.Package != nil {
			return strings.Join(t.Command, " ") + " (package " + t.Package.Digest + ")"
		}
		return strings.Join(t.Command, " ")
	}
	return t.URL
}

// pinPackage records what a local command runs, as its start will resolve it: every start is
// refused once the files differ (mcpgw), and a quarantine of the digest stops it. A command
// that cannot be resolved now would not start either: refused.
func (s *Service) pinPackage(t *warden.Tool) error {
	if t.Kind != warden.ToolMCPCommand || t.Package != nil || s.packages == nil {
		return nil
	}
	pkg, err := s.packages.PinCommand(t.Name, t.Command)
	if err != nil {
		return warden.Errorf(warden.EInvalid, "tool %s: the command's files cannot be pinned: %v; give a program that exists in the servers' PATH, or its absolute path", t.Name, err)
	}
	t.Package = pkg
	return nil
}

func (s *Service) checkSecrets(ctx context.Context, t *warden.Tool) error {
	names := []string{}
	if t.Secret != "" {
		names = append(names, t.Secret)
	}
	for _, n := range t.SecretEnv {
		names = append(names, n)
	}
	for _, n := range names {
		ok, err := s.secrets.Exists(ctx, n)
		if err != nil {
			return err
		}
		if !ok {
			return warden.Errorf(warden.EInvalid, "secret %q does not exist; create it first with 'warden secret set %s'", n, n)
		}
	}
	return nil
}

// checkWith refuses a change of tools after which the policies in force would not compile: the
// gateway would otherwise deny everything.
func (s *Service) checkWith(ctx context.Context, change func([]*warden.Tool) []*warden.Tool) error {
	tools, err := s.store.Tools(ctx)
	if err != nil {
		return err
	}
	files, _, err := s.currentPolicies(ctx)
	if err != nil {
		return err
	}
	if err := gateway.Check(change(tools), files); err != nil {
		return warden.Errorf(warden.EConflict, "the policies in force would no longer be valid: %s", warden.ErrorMessage(err))
	}
	return nil
}

func (s *Service) currentPolicies(ctx context.Context) (map[string]string, int64, error) {
	ps, err := s.store.PolicySet(ctx, 0)
	if warden.ErrorCode(err) == warden.ENotFound {
		return map[string]string{}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	return ps.Files, ps.Version, nil
}

// reloadRegistry reloads the gateway after a tool change, which also tells the kill state which
// tools are disabled.
func (s *Service) reloadRegistry(ctx context.Context, name string) {
	if err := s.registry.Load(ctx); err != nil {
		s.log.Error("reloading the gateway after a tool change", "tool", name, "err", err)
	}
}

// Tools lists the registered tools.
func (s *Service) Tools(ctx context.Context) ([]*warden.Tool, error) { return s.store.Tools(ctx) }

// Tool returns one tool.
func (s *Service) Tool(ctx context.Context, name string) (*warden.Tool, error) {
	if err := warden.ValidateName("tool", name); err != nil {
		return nil, err
	}
	return s.store.Tool(ctx, name)
}

// updateTool changes a stored tool by fn (stamping UpdatedAt), reloads this replica's
// registry and announces the change to the fleet: the one path of a change to one tool inside
// commit.
func (s *Service) updateTool(ctx context.Context, announce killswitch.Announce, name string, fn func(t *warden.Tool) error) (*warden.Tool, error) {
	t, err := s.store.UpdateTool(ctx, name, func(t *warden.Tool) error {
		if err := fn(t); err != nil {
			return err
		}
		t.UpdatedAt = s.now().UTC()
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.reloadRegistry(ctx, name)
	announce(fleet.TopicTool, name)
	return t, nil
}

// SetToolEnabled enables or disables a tool for every agent. Disabling cancels the calls to it in
// flight on every replica, waits for the fleet's acknowledgements, and reports what each
// replica ended.
func (s *Service) SetToolEnabled(ctx context.Context, p *warden.Principal, name string, enabled bool, reason string) (*warden.Tool, *killswitch.Report, error) {
	if err := warden.ValidateName("tool", name); err != nil {
		return nil, nil, err
	}
	reason, err := validateReason(reason, true)
	if err != nil {
		return nil, nil, err
	}
	// Disabling waits for the fleet, as a kill does: every replica has cancelled the calls to
	// the tool before the command returns.
	var t *warden.Tool
	r, err := s.commit(ctx, !enabled, func(ctx context.Context, announce killswitch.Announce) error {
		var err error
		t, err = s.updateTool(ctx, announce, name, func(t *warden.Tool) error {
			t.Disabled = !enabled
			return nil
		})
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	event, msg := warden.EventToolEnable, reason
	if !enabled {
		event = warden.EventToolDisable
		msg = strings.TrimSpace(fmt.Sprintf("%s (%d calls in flight cancelled%s)", reason, r.CallsCancelled, killswitch.FleetNote(r)))
	}
	return t, r, s.event(ctx, p, event, "tool:"+name, msg)
}

// RemoveTool unregisters a tool. Policies that name it must go first.
func (s *Service) RemoveTool(ctx context.Context, p *warden.Principal, name string) error {
	if err := warden.ValidateName("tool", name); err != nil {
		return err
	}
	s.policyMu.Lock()
	defer s.policyMu.Unlock()
	if err := s.checkWith(ctx, func(tools []*warden.Tool) []*warden.Tool {
		return slices.DeleteFunc(tools, func(t *warden.Tool) bool { return t.Name == name })
	}); err != nil {
		return err
	}
	// Through the kill switch's one change: the registry reload tells the kill state the tool
	// is gone, and the reconciler — here at once, on every other replica when the announcement
	// reaches it — cancels the calls to it in flight.
	_, err := s.commit(ctx, false, func(ctx context.Context, announce killswitch.Announce) error {
		if err := s.store.DeleteTool(ctx, name); err != nil {
			return err
		}
		if err := s.store.DeleteToolManifests(ctx, name); err != nil {
			return err
		}
		s.reloadRegistry(ctx, name)
		announce(fleet.TopicTool, name)
		return nil
	})
	if err != nil {
		return err
	}
	return s.event(ctx, p, warden.EventToolRemove, "tool:"+name, "")
}

// SetSecret stores a secret's value; the value never comes back out of any API.
func (s *Service) SetSecret(ctx context.Context, p *warden.Principal, name, value string) (*warden.Secret, error) {
	sec, err := s.secrets.Put(ctx, name, value)
	if err != nil {
		return nil, err
	}
	return sec, s.event(ctx, p, warden.EventSecretSet, "secret:"+name, "")
}

// Secrets lists secrets: names and dates only.
func (s *Service) Secrets(ctx context.Context) ([]*warden.Secret, error) { return s.secrets.List(ctx) }

// DeleteSecret removes a secret that no tool uses.
func (s *Service) DeleteSecret(ctx context.Context, p *warden.Principal, name string) error {
	tools, err := s.store.Tools(ctx)
	if err != nil {
		return err
	}
	for _, t := range tools {
		if t.Secret == name || slices.Contains(mapValues(t.SecretEnv), name) {
			return warden.Errorf(warden.EConflict, "secret %q is used by tool %s; change or remove the tool first", name, t.Name)
		}
	}
	if err := s.secrets.Delete(ctx, name); err != nil {
		return err
	}
	return s.event(ctx, p, warden.EventSecretDelete, "secret:"+name, "")
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// event records a person's change.
func (s *Service) event(ctx context.Context, p *warden.Principal, event, resource, message string) error {
	return s.audit.Append(ctx, &warden.AuditEvent{
		Type:     event,
		Actor:    humanActor(ctx, p),
		Target:   warden.EventTarget{Resource: resource},
		Decision: warden.EventDecision{Effect: warden.EffectAllow, Message: message},
		Outcome:  warden.EventOutcome{Status: warden.StatusOK},
	})
}

// mcpMethodActions are the actions of an MCP tool other than its tools' names: the methods the
// MCP gateway decides (internal/mcpgw/DESIGN.md, "Decisions").
var mcpMethodActions = []string{"resources/read", "resources/subscribe", "prompts/get", "completion/complete"}

// approvalActions validates the actions a tool declares as needing approval: "*" alone, or
// action names as policies write them. Whether an MCP server has such a tool is not known
// until it is asked, so names are checked for form only; for an HTTP tool they must be the
// actions of its routes, where a typo would otherwise silently require nothing.
func approvalActions(spec ToolSpec) ([]string, error) {
	if len(spec.Approval) == 0 {
		return nil, nil
	}
	if slices.Contains(spec.Approval, "*") {
		if len(spec.Approval) > 1 {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: approval is either \"*\" (every action) or a list of actions, not both", spec.Name)
		}
		return []string{"*"}, nil
	}
	var routeActions []string
	noSuch := "no route of the tool has"
	for _, a := range spec.Actions {
		routeActions, noSuch = append(routeActions, a.Name), "the tool does not declare"
	}
	if spec.HTTP != "" {
		for _, text := range spec.Routes {
			r, err := route.Parse(text)
			if err != nil {
				return nil, err
			}
			routeActions = append(routeActions, r.Action)
		}
	}
	mcp := spec.MCP != "" || spec.MCPCommand != ""
	var out []string
	for _, a := range spec.Approval {
		if a == "" || len(a) > 128 || strings.ContainsAny(a, " \t\r\n\"") {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: invalid action %q in approval", spec.Name, a)
		}
		// An MCP server's actions are its tool names, which the gateway calls only when they
		// meet the specification's rule, and the methods it decides on its own.
		if mcp && !slices.Contains(mcpMethodActions, a) && warden.ValidateMCPToolName(a) != nil {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: approval names %q, which is neither an MCP tool name (1-128 ASCII letters, digits, '_', '-' and '.') nor one of %s",
				spec.Name, a, strings.Join(mcpMethodActions, ", "))
		}
		if routeActions != nil && !slices.Contains(routeActions, a) {
			return nil, warden.Errorf(warden.EInvalid, "tool %s: approval names %q, which %s (%s)", spec.Name, a, noSuch, strings.Join(routeActions, ", "))
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, nil
}
