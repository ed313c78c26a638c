// Package ocsf maps warden's audit events to OCSF (the Open Cybersecurity Schema Framework)
// for SIEMs: tool calls to API Activity, tokens to Authentication, agents and admin tokens to
// Account Change. docs/audit.md documents the mapping field by field.
//
// Where OpenTelemetry's GenAI semantic conventions name a field (gen_ai.agent.id,
// gen_ai.tool.name, …), the export carries it under that name in the unmapped object.
package ocsf

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
)

// Version is the OCSF schema version the mapping follows.
const Version = "1.3.0"

// Classes and categories used.
const (
	CategoryIAM         = 3 // Identity & Access Management
	CategoryApplication = 6 // Application Activity

	ClassAccountChange  = 3001
	ClassAuthentication = 3002
	ClassAPIActivity    = 6003
)

// Event is one OCSF event. Only the attributes warden fills are declared.
type Event struct {
	ActivityID   int            `json:"activity_id"`
	ActivityName string         `json:"activity_name"`
	CategoryUID  int            `json:"category_uid"`
	CategoryName string         `json:"category_name"`
	ClassUID     int            `json:"class_uid"`
	ClassName    string         `json:"class_name"`
	TypeUID      int            `json:"type_uid"`
	TypeName     string         `json:"type_name"`
	Time         int64          `json:"time"` // milliseconds since the Unix epoch
	SeverityID   int            `json:"severity_id"`
	Severity     string         `json:"severity"`
	StatusID     int            `json:"status_id"`
	Status       string         `json:"status"`
	StatusCode   string         `json:"status_code,omitempty"`
	StatusDetail string         `json:"status_detail,omitempty"`
	Message      string         `json:"message,omitempty"`
	Metadata     Metadata       `json:"metadata"`
	Actor        *Actor         `json:"actor,omitempty"`
	User         *User          `json:"user,omitempty"` // the account changed or authenticated
	SrcEndpoint  *Endpoint      `json:"src_endpoint,omitempty"`
	API          *API           `json:"api,omitempty"`
	Resources    []Resource     `json:"resources,omitempty"`
	Unmapped     map[string]any `json:"unmapped,omitempty"`
}

// Metadata says where the event comes from.
type Metadata struct {
	Version        string  `json:"version"`
	Product        Product `json:"product"`
	UID            string  `json:"uid"`
	CorrelationUID string  `json:"correlation_uid,omitempty"`
	EventCode      string  `json:"event_code"`
	LogName        string  `json:"log_name"`
}

// Product is warden.
type Product struct {
	Name       string `json:"name"`
	VendorName string `json:"vendor_name"`
}

// Actor is who acted.
type Actor struct {
	User    *User    `json:"user,omitempty"`
	Session *Session `json:"session,omitempty"`
}

// User is an agent or a person.
type User struct {
	UID       string `json:"uid,omitempty"`
	Name      string `json:"name,omitempty"`
	EmailAddr string `json:"email_addr,omitempty"`
	TypeID    int    `json:"type_id"`
	Type      string `json:"type"`
}

// Session is the agent's session.
type Session struct {
	UID string `json:"uid"`
}

// Endpoint is a network peer.
type Endpoint struct {
	IP   string `json:"ip,omitempty"`
	Port int    `json:"port,omitempty"`
}

// API is the operation a tool call asked for.
type API struct {
	Operation string       `json:"operation"`
	Service   *Service     `json:"service,omitempty"`
	Request   *APIRequest  `json:"request,omitempty"`
	Response  *APIResponse `json:"response,omitempty"`
}

// Service is the tool.
type Service struct {
	Name string `json:"name"`
}

// APIRequest identifies the call by its decision id.
type APIRequest struct {
	UID string `json:"uid"`
}

// APIResponse is the upstream's answer.
type APIResponse struct {
	Code int `json:"code,omitempty"`
}

// Resource is what was acted on.
type Resource struct {
	Name string `json:"name"`
	Type string `json:"type,omitempty"`
}

var categoryNames = map[int]string{CategoryIAM: "Identity & Access Management", CategoryApplication: "Application Activity"}
var classNames = map[int]string{ClassAccountChange: "Account Change", ClassAuthentication: "Authentication", ClassAPIActivity: "API Activity"}

// Map returns the OCSF event of ev. It never fails: an event it has no class for is API
// Activity with the event type as the operation.
func Map(ev *warden.AuditEvent) *Event {
	class, activity, activityName := classify(ev)
	category := class / 1000
	o := &Event{
		ActivityID: activity, ActivityName: activityName,
		CategoryUID: category, CategoryName: categoryNames[category],
		ClassUID: class, ClassName: classNames[class],
		TypeUID: class*100 + activity, TypeName: classNames[class] + ": " + activityName,
		Time:    ev.Time.UnixMilli(),
		Message: ev.Decision.Message,
		Metadata: Metadata{
			Version: Version, Product: Product{Name: "warden", VendorName: "warden"},
			UID: ev.ID, CorrelationUID: ev.Decision.ID, EventCode: ev.Type, LogName: "audit",
		},
		Actor:       actor(ev.Actor),
		SrcEndpoint: endpoint(ev.Actor.Source),
	}
	o.SeverityID, o.Severity = severity(ev)
	o.StatusID, o.Status, o.StatusCode, o.StatusDetail = status(ev)
	switch class {
	case ClassAPIActivity:
		o.API = &API{Operation: ev.Target.Action}
		if o.API.Operation == "" {
			o.API.Operation = ev.Type
		}
		if ev.Target.Tool != "" {
			o.API.Service = &Service{Name: ev.Target.Tool}
		}
		if ev.Decision.ID != "" {
			o.API.Request = &APIRequest{UID: ev.Decision.ID}
		}
		if ev.Outcome.UpstreamStatus != 0 {
			o.API.Response = &APIResponse{Code: ev.Outcome.UpstreamStatus}
		}
	case ClassAuthentication:
		o.User = o.Actor.User
	case ClassAccountChange:
		_, name, _ := strings.Cut(ev.Target.Resource, ":")
		o.User = &User{Name: name, TypeID: 99, Type: "Agent"}
		if strings.HasPrefix(ev.Type, "admin.token.") {
			o.User.TypeID, o.User.Type = 2, "Admin"
		}
	}
	if ev.Target.Resource != "" {
		typ, _, _ := strings.Cut(ev.Target.Resource, ":")
		o.Resources = []Resource{{Name: ev.Target.Resource, Type: typ}}
	}
	o.Unmapped = unmapped(ev)
	return o
}

// classify picks the class and activity of an event.
func classify(ev *warden.AuditEvent) (class, activity int, name string) {
	switch ev.Type {
	case warden.EventTokenIssue, warden.EventTokenRefuse, warden.EventOAuthCodeRedeem, warden.EventOAuthRefresh, warden.EventOAuthRefreshReused:
		return ClassAuthentication, 1, "Logon"
	case warden.EventTokenRevoke:
		return ClassAuthentication, 2, "Logoff"
	case warden.EventTokenIntrospect:
		return ClassAuthentication, 99, "Other"
	case warden.EventAgentCreate, warden.EventAdminTokenCreate, warden.EventOAuthRegister:
		return ClassAccountChange, 1, "Create"
	case warden.EventAgentResume:
		return ClassAccountChange, 2, "Enable"
	case warden.EventAgentRotate:
		return ClassAccountChange, 3, "Password Change"
	case warden.EventAgentSuspend, warden.EventAdminTokenRevoke:
		return ClassAccountChange, 5, "Disable"
	case warden.EventAgentDelete:
		return ClassAccountChange, 6, "Delete"
	case warden.EventAgentRenew:
		return ClassAccountChange, 99, "Other"
	}
	id, name := apiActivity(ev.Target.Action)
	return ClassAPIActivity, id, name
}

// apiActivity reads the kind of operation from an action's name: issues.create is Create,
// repos.list Read, and so on; what says nothing is Other.
func apiActivity(action string) (int, string) {
	a := strings.ToLower(action)
	verbs := []struct {
		id    int
		name  string
		words []string
	}{
		{4, "Delete", []string{"delete", "remove", "destroy", "drop"}},
		{3, "Update", []string{"update", "edit", "patch", "set", "modify", "put"}},
		{1, "Create", []string{"create", "add", "post", "send", "new", "insert"}},
		{2, "Read", []string{"get", "list", "read", "search", "query", "fetch", "show"}},
	}
	for _, v := range verbs {
		for _, w := range v.words {
			if containsWord(a, w) {
				return v.id, v.name
			}
		}
	}
	return 99, "Other"
}

// containsWord reports whether w is one of the words of s, which are separated by anything but
// letters.
func containsWord(s, w string) bool {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < 'a' || r > 'z' }) {
		if f == w {
			return true
		}
	}
	return false
}

func actor(a warden.EventActor) *Actor {
	u := &User{UID: a.ID, Name: a.Name, EmailAddr: a.Email}
	switch a.Kind {
	case warden.ActorAgent:
		u.TypeID, u.Type = 99, "Agent"
	case warden.ActorHuman:
		u.TypeID, u.Type = 1, "User"
		if a.Role == string(warden.RoleAdmin) {
			u.TypeID, u.Type = 2, "Admin"
		}
	case warden.ActorSystem:
		u.TypeID, u.Type = 3, "System"
	default:
		u.TypeID, u.Type = 0, "Unknown"
	}
	out := &Actor{User: u}
	if a.SessionID != "" {
		out.Session = &Session{UID: a.SessionID}
	}
	return out
}

func endpoint(source string) *Endpoint {
	if source == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(source)
	if err != nil {
		host = source
	}
	if net.ParseIP(host) == nil {
		return nil
	}
	e := &Endpoint{IP: host}
	if p, err := strconv.Atoi(port); err == nil && p > 0 && p < 65536 {
		e.Port = p
	}
	return e
}

func severity(ev *warden.AuditEvent) (int, string) {
	switch ev.Target.Risk {
	case warden.RiskLow:
		return 2, "Low"
	case warden.RiskMedium:
		return 3, "Medium"
	case warden.RiskHigh:
		return 4, "High"
	case warden.RiskCritical:
		return 5, "Critical"
	}
	return 1, "Informational"
}

func status(ev *warden.AuditEvent) (id int, name, code, detail string) {
	switch ev.Decision.Effect {
	case warden.EffectDeny, warden.EffectRejected, warden.EffectExpired, warden.EffectError, warden.EffectApprovalRequired:
		return 2, "Failure", ev.Decision.Effect, ev.Decision.Reason
	}
	switch ev.Outcome.Status {
	case warden.StatusError, warden.StatusCanceled:
		return 2, "Failure", ev.Outcome.Status, ev.Decision.Reason
	case warden.StatusOK:
		return 1, "Success", ev.Outcome.Status, ev.Decision.Reason
	}
	if ev.Decision.Effect != "" {
		return 1, "Success", ev.Decision.Effect, ev.Decision.Reason
	}
	return 0, "Unknown", "", ev.Decision.Reason
}

// unmapped carries the GenAI attributes and warden's own fields that OCSF has no place for.
func unmapped(ev *warden.AuditEvent) map[string]any {
	m := map[string]any{}
	put := func(k string, v any) {
		switch x := v.(type) {
		case string:
			if x == "" {
				return
			}
		case int64:
			if x == 0 {
				return
			}
		case []string:
			if len(x) == 0 {
				return
			}
		}
		m[k] = v
	}
	if ev.Actor.Kind == warden.ActorAgent {
		put("gen_ai.agent.id", ev.Actor.ID)
		put("gen_ai.agent.name", ev.Actor.Name)
		put("gen_ai.conversation.id", ev.Actor.SessionID)
	}
	if ev.Target.Tool != "" {
		put("gen_ai.tool.name", ev.Target.Tool)
		put("gen_ai.operation.name", "execute_tool")
		put("gen_ai.tool.call.id", ev.Decision.ID)
	}
	put("trace_id", ev.TraceID)
	put("span_id", ev.SpanID)
	put("warden.type", ev.Type)
	put("warden.seq", ev.Seq)
	put("warden.hash", ev.Hash)
	put("warden.prev_hash", ev.PrevHash)
	put("warden.replica", ev.Actor.Replica)
	put("warden.actor.owner", ev.Actor.Owner)
	put("warden.actor.role", ev.Actor.Role)
	put("warden.on_behalf_of", ev.Actor.OnBehalfOf)
	put("warden.risk", string(ev.Target.Risk))
	put("warden.args_sha256", ev.Target.ArgsSHA256)
	put("warden.decision.effect", ev.Decision.Effect)
	put("warden.decision.policies", ev.Decision.Policies)
	put("warden.decision.policy_version", ev.Decision.PolicyVersion)
	if ev.Decision.BudgetBurn > 0 {
		m["warden.decision.budget_burn"] = ev.Decision.BudgetBurn
	}
	if len(ev.Decision.Errors) > 0 {
		m["warden.decision.errors"] = ev.Decision.Errors
	}
	if ev.Outcome.LatencyMS != 0 {
		m["warden.outcome.latency_ms"] = ev.Outcome.LatencyMS
	}
	put("warden.outcome.bytes_in", ev.Outcome.BytesIn)
	put("warden.outcome.bytes_out", ev.Outcome.BytesOut)
	put("warden.outcome.remote_addr", ev.Outcome.RemoteAddr)
	if len(ev.Target.Arguments) > 0 && json.Valid(ev.Target.Arguments) {
		m["warden.arguments"] = ev.Target.Arguments
	}
	if ev.Flow != nil {
		m["warden.flow"] = ev.Flow
	}
	return m
}
