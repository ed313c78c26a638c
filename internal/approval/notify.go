package approval

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
	"github.com/wardenhq/warden/internal/redact"
)

// Webhook is told of every new request.
type Webhook struct {
	URL string
	// Format is "json" (Message) or "slack" ({"text": …} for Slack-compatible incoming webhooks).
	Format  string
	Headers map[string]string // sent with every POST, e.g. an Authorization the receiver checks
	Timeout time.Duration     // per POST; default 5s
	Retries int               // more attempts after a failure; default 3
}

// Message is the JSON a webhook receives for a new request. It names the call and where to
// decide it; it carries no secret: the arguments are redacted as in the audit log, and again by
// the credential patterns of package redact.
type Message struct {
	Type       string          `json:"type"` // approval.requested
	ID         string          `json:"id"`
	Agent      string          `json:"agent"`
	Owner      string          `json:"owner"`
	OnBehalfOf string          `json:"on_behalf_of,omitempty"`
	Tool       string          `json:"tool"`
	Action     string          `json:"action"`
	Resource   string          `json:"resource,omitempty"`
	Risk       warden.Risk     `json:"risk"`
	Reason     string          `json:"reason"` // policy, tool or risk
	Policies   []string        `json:"policies,omitempty"`
	Arguments  json.RawMessage `json:"arguments,omitempty"`
	ArgsSHA256 string          `json:"args_sha256,omitempty"`
	// Flow is what the session had read and which arguments came from untrusted output.
	Flow      *warden.FlowFacts `json:"flow,omitempty"`
	Required  int               `json:"required_approvals"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at"`
	URL       string            `json:"url,omitempty"` // the request in the HTTP API
	Approve   string            `json:"approve"`       // the command that approves it
	Reject    string            `json:"reject"`        // the command that rejects it
}

func (s *Service) message(a *warden.Approval) *Message {
	var r *redact.Redactor // no tool secrets here: those were removed by the gateway; patterns only
	m := &Message{
		Type: warden.EventApprovalRequested, ID: a.ID, Agent: a.AgentName, Owner: a.Owner, OnBehalfOf: r.String(a.OnBehalfOf),
		Tool: a.Tool, Action: r.String(a.Action), Resource: r.String(a.Resource), Risk: a.Risk, Reason: a.Reason,
		Policies: a.Policies, ArgsSHA256: a.ArgsSHA256, Flow: a.Flow, Required: a.Required, CreatedAt: a.CreatedAt, ExpiresAt: a.ExpiresAt,
		Approve: "warden approve " + a.ID + " [--note TEXT]",
		Reject:  "warden reject " + a.ID + " --reason TEXT",
	}
	if len(a.Arguments) > 0 {
		m.Arguments = r.JSON(a.Arguments)
	}
	if s.opts.BaseURL != "" {
		m.URL = s.opts.BaseURL + "/v1/approvals/" + a.ID
	}
	return m
}

// SlackText is the text of the Slack-compatible message. Everything the agent chose (action,
// resource, the person it acts for) is escaped, so that it cannot turn into a link or a mention;
// the arguments are left out: a channel is a wider audience than the approvers.
func SlackText(m *Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Approval needed: agent *%s* (owner %s", slackEscape(m.Agent), slackEscape(m.Owner))
	if m.OnBehalfOf != "" {
		fmt.Fprintf(&b, ", acting for %s", slackEscape(m.OnBehalfOf))
	}
	fmt.Fprintf(&b, ") wants to call *%s* `%s`", slackEscape(m.Tool), slackCode(m.Action))
	if m.Resource != "" {
		fmt.Fprintf(&b, " on `%s`", slackCode(m.Resource))
	}
	fmt.Fprintf(&b, ".\nRisk %s; asked by %s", m.Risk, m.Reason)
	if m.Reason == warden.ApprovalByPolicy && len(m.Policies) > 0 {
		fmt.Fprintf(&b, " (%s)", slackEscape(strings.Join(m.Policies, ", ")))
	}
	if m.Required > 1 {
		fmt.Fprintf(&b, "; needs %d approvers", m.Required)
	}
	fmt.Fprintf(&b, ". Request `%s` expires %s.\n`%s` or `%s`", m.ID, m.ExpiresAt.UTC().Format(time.RFC3339), m.Approve, m.Reject)
	return b.String()
}

// slackEscape escapes the three characters Slack's mrkdwn gives meaning to.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// slackCode escapes s for inline code, which also must not contain a backquote or a newline.
func slackCode(s string) string {
	return slackEscape(strings.NewReplacer("`", "'", "\n", " ", "\r", " ").Replace(s))
}

// notifier delivers messages to the webhooks: each webhook has its own queue and worker, so a
// slow receiver delays only itself, and a full queue drops the message (with a log line) rather
// than hold up the call that made the request.
type notifier struct {
	log   *slog.Logger
	clock clock.Clock // times the pause between retries
	hooks []*hook
}

type hook struct {
	Webhook
	client *http.Client
	queue  chan *outgoing
}

// outgoing is one notification: an approval request's Message or a detection finding's
// FindingMessage, in both of a webhook's formats.
type outgoing struct {
	id    string // the request's or the finding's, for the log
	json  any
	slack string
}

const queueSize = 256

func newNotifier(webhooks []Webhook, log *slog.Logger, c clock.Clock) *notifier {
	n := &notifier{log: log, clock: c}
	for _, w := range webhooks {
		if w.Timeout <= 0 {
			w.Timeout = 5 * time.Second
		}
		if w.Retries <= 0 {
			w.Retries = 3
		}
		if w.Format == "" {
			w.Format = "json"
		}
		n.hooks = append(n.hooks, &hook{Webhook: w, client: &http.Client{Timeout: w.Timeout}, queue: make(chan *outgoing, queueSize)})
	}
	return n
}

// requested queues m for every webhook; it never blocks.
func (n *notifier) requested(m *Message) {
	n.queue(&outgoing{id: m.ID, json: m, slack: SlackText(m)})
}

// queue queues o for every webhook; it never blocks.
func (n *notifier) queue(o *outgoing) {
	for _, h := range n.hooks {
		select {
		case h.queue <- o:
		default:
			n.log.Warn("approval webhook queue is full; notification dropped", "webhook", redactedURL(h.URL), "id", o.id)
		}
	}
}

// run delivers until ctx ends.
func (n *notifier) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range n.hooks {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-h.queue:
					n.deliver(ctx, h, m)
				}
			}
		})
	}
	wg.Wait()
}

// deliver POSTs m, trying again after a failure with a growing pause.
func (n *notifier) deliver(ctx context.Context, h *hook, m *outgoing) {
	var body []byte
	var err error
	if h.Format == "slack" {
		body, err = json.Marshal(map[string]string{"text": m.slack})
	} else {
		body, err = json.Marshal(m.json)
	}
	if err != nil {
		n.log.Error("encoding an approval notification", "id", m.id, "err", err)
		return
	}
	pause := time.Second
	for attempt := 0; ; attempt++ {
		err = h.post(ctx, body)
		if err == nil {
			return
		}
		if attempt >= h.Retries || ctx.Err() != nil {
			n.log.Warn("approval webhook failed; notification dropped", "webhook", redactedURL(h.URL), "id", m.id, "attempts", attempt+1, "err", err)
			return
		}
		t := n.clock.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		pause *= 2
	}
}

func (h *hook) post(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden-approvals")
	resp, err := h.client.Do(req)
	if err != nil {
		// *url.Error repeats the URL, whose path may be the receiver's secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver answered %s", resp.Status)
	}
	return nil
}

// redactedURL is a webhook URL fit for a log line: Slack's incoming webhook URLs carry their
// secret in the path, and a URL's user info or query may carry one too, so only the scheme and
// host are shown.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return redact.Marker
	}
	return u.Scheme + "://" + u.Host + "/…"
}
