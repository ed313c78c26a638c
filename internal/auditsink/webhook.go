package auditsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wardenhq/warden"
)

// Webhook POSTs batches of events as JSON lines (application/x-ndjson). A 2xx answer
// acknowledges the batch; anything else, or no answer, and the batch is sent again. The
// Warden-Audit-First-Seq and Warden-Audit-Last-Seq headers let a receiver drop what it has
// already taken, since at least once means sometimes twice.
type Webhook struct {
	url     string
	headers map[string]string
	client  *http.Client
	enc     Encoder
}

// NewWebhook returns a webhook sink.
func NewWebhook(url string, headers map[string]string, timeout time.Duration, enc Encoder) *Webhook {
	return &Webhook{url: url, headers: headers, client: &http.Client{Timeout: timeout}, enc: enc}
}

// Deliver POSTs evs in one request.
func (s *Webhook) Deliver(ctx context.Context, evs []*warden.AuditEvent) error {
	var body bytes.Buffer
	for _, ev := range evs {
		line, err := s.enc(ev)
		if err != nil {
			return fmt.Errorf("webhook sink: encode event %d: %w", ev.Seq, err)
		}
		body.Write(line)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, &body)
	if err != nil {
		return fmt.Errorf("webhook sink: %w", err)
	}
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("User-Agent", "warden-audit")
	req.Header.Set("Warden-Audit-First-Seq", strconv.FormatInt(evs[0].Seq, 10))
	req.Header.Set("Warden-Audit-Last-Seq", strconv.FormatInt(evs[len(evs)-1].Seq, 10))
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook sink: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook sink: the receiver answered %s", resp.Status)
	}
	return nil
}

// Close releases idle connections.
func (s *Webhook) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
