package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/auditsink"
	"github.com/wardenhq/warden/internal/checkpoint"
)

// AuditService is what the audit routes need of the audit log beyond Append: the server's
// *audit.Log. The routes answer 503 when API.Audit is not one.
type AuditService interface {
	warden.AuditLog
	Changed() <-chan struct{}
	Head(ctx context.Context) (int64, error)
	Checkpoint(ctx context.Context) (*warden.AuditCheckpoint, error)
	LatestCheckpoint(ctx context.Context) (*warden.AuditCheckpoint, error)
	VerifierKey() (string, error)
	Verify(ctx context.Context, external []byte) (*audit.Report, error)
}

// Timing of the event stream.
const (
	streamPoll      = time.Second // another replica's events are found by polling
	streamKeepalive = 15 * time.Second
	streamPage      = 1000
)

// auditRoutes mounts the audit log's routes. Every one reads: no route changes or deletes an
// event. Auditors, operators and admins may use them.
func (a *API) auditRoutes(mux *http.ServeMux) {
	read := warden.RoleSet{warden.RoleOperator, warden.RoleAuditor}
	mux.Handle("GET /v1/audit/events", a.adminRoute(read, a.auditEvents))
	mux.Handle("GET /v1/audit/stream", a.adminRoute(read, a.auditStream))
	mux.Handle("GET /v1/audit/export", a.adminRoute(read, a.auditExport))
	mux.Handle("GET /v1/audit/checkpoint", a.adminRoute(read, a.auditCheckpoint))
	mux.Handle("POST /v1/audit/checkpoint", a.adminRoute(read, a.auditSignCheckpoint))
	mux.Handle("GET /v1/audit/key", a.adminRoute(read, a.auditKey))
	mux.Handle("POST /v1/audit/verify", a.adminRoute(read, a.auditVerify))
}

func (a *API) auditService() (AuditService, error) {
	svc, ok := a.Audit.(AuditService)
	if !ok {
		return nil, warden.Errorf(warden.EUnavailable, "this server cannot read its audit log")
	}
	return svc, nil
}

// auditEvents answers a search. Warden-Audit-Head is the newest seq when the search began, from
// which a client can follow the stream without missing or repeating an event.
func (a *API) auditEvents(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	f, err := ParseAuditFilter(r.URL.Query(), time.Now())
	if err != nil {
		return err
	}
	if f.Limit == 0 {
		f.Limit = apitype.AuditDefaultLimit
	}
	if svc, err := a.auditService(); err == nil {
		head, err := svc.Head(r.Context())
		if err != nil {
			return err
		}
		w.Header().Set(apitype.AuditHeadHeader, strconv.FormatInt(head, 10))
	}
	evs, err := a.Store.AuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []*warden.AuditEvent{}
	}
	// The total, counted only when the page may not be all of it.
	total := strconv.Itoa(len(evs))
	if f.AfterSeq > 0 || f.BeforeSeq > 0 || len(evs) >= f.Limit {
		n, err := a.Store.CountAuditEvents(r.Context(), f, apitype.AuditTotalCap)
		if err != nil {
			return err
		}
		total = strconv.FormatInt(n, 10)
		if n >= apitype.AuditTotalCap {
			total += "+"
		}
	}
	w.Header().Set(apitype.AuditTotalHeader, total)
	writeJSON(w, http.StatusOK, evs)
	return nil
}

// ParseStreamFilter reads the filter of an event stream: the search parameters but limit and
// newest, which a stream has no use for, with Last-Event-ID (the seq of the last event the
// client got) taking the place of after. Without either the stream starts at head, the newest
// event when it opened.
func ParseStreamFilter(q url.Values, lastEventID string, head int64, now time.Time) (warden.AuditFilter, error) {
	if q.Has("limit") || q.Has("newest") || q.Has("before") {
		return warden.AuditFilter{}, warden.Errorf(warden.EInvalid, "a stream takes no limit, newest or before")
	}
	f, err := ParseAuditFilter(q, now)
	if err != nil {
		return f, err
	}
	switch {
	case lastEventID != "":
		seq, err := strconv.ParseInt(lastEventID, 10, 64)
		if err != nil || seq < 0 {
			return f, warden.Errorf(warden.EInvalid, "Last-Event-ID must be the seq of an event")
		}
		f.AfterSeq = seq
	case !q.Has("after"):
		f.AfterSeq = head
	}
	return f, nil
}

// auditStream serves events as they are committed, as Server-Sent Events: each event is
// "id: <seq>", "event: audit", "data: <the event's JSON>". A client that reconnects with
// Last-Event-ID resumes after that seq.
func (a *API) auditStream(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	svc, err := a.auditService()
	if err != nil {
		return err
	}
	ctx := r.Context()
	head, err := svc.Head(ctx)
	if err != nil {
		return err
	}
	f, err := ParseStreamFilter(r.URL.Query(), r.Header.Get("Last-Event-ID"), head, time.Now())
	if err != nil {
		return err
	}
	StreamAudit(ctx, w, svc, a.Store, f, a.Log)
	return nil
}

// AuditReader is the store's search of the audit log.
type AuditReader interface {
	AuditEvents(ctx context.Context, f warden.AuditFilter) ([]*warden.AuditEvent, error)
}

// StreamAudit writes the events matching f after f.AfterSeq as they are committed, as
// Server-Sent Events, until ctx ends or the client goes: each "id: <seq>", "event: audit",
// "data: <the event's JSON>". It reads the store for its own stream, which answers
// /v1/audit/stream's searches; the console's many alike streams share one reader through an
// AuditHub, which writes the same frames.
func StreamAudit(ctx context.Context, w http.ResponseWriter, svc AuditService, store AuditReader, f warden.AuditFilter, log *slog.Logger) {
	rc := http.NewResponseController(w)
	beginSSE(w)
	bw := bufio.NewWriter(w)
	// The first bytes tell the client the stream is open, and how long to wait to reconnect.
	fmt.Fprint(bw, "retry: 2000\n\n")
	keepalive := time.NewTicker(streamKeepalive)
	defer keepalive.Stop()
	// scanned is the seq up to which every matching event has been sent: the stream moves on
	// past events that do not match without asking the store for them again.
	scanned := f.AfterSeq
	for {
		changed := svc.Changed()
		head, err := svc.Head(ctx)
		if err == nil {
			f.AfterSeq, f.Limit = scanned, streamPage
			var evs []*warden.AuditEvent
			evs, err = store.AuditEvents(ctx, f)
			for _, ev := range evs {
				if err = writeSSE(bw, ev); err != nil {
					break
				}
				scanned = ev.Seq
			}
			if err == nil && len(evs) < streamPage {
				scanned = max(scanned, head)
			}
			if err == nil && len(evs) == streamPage {
				if err = flush(bw, rc); err == nil {
					continue
				}
			}
		}
		if err == nil {
			err = flush(bw, rc)
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("audit stream ended", "err", err)
			}
			return // the response has begun; the client sees the stream end and reconnects
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(streamPoll):
		case <-keepalive.C:
			fmt.Fprint(bw, ": keepalive\n\n")
		}
	}
}

func writeSSE(w io.Writer, ev *warden.AuditEvent) error {
	frame, err := sseFrame(ev)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}

// sseFrame is an event as Server-Sent Events: "id: <seq>", "event: audit", "data: <JSON>".
func sseFrame(ev *warden.AuditEvent) ([]byte, error) {
	line, err := auditsink.JSONL(ev)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, apitype.AuditEventName, line), nil
}

func flush(bw *bufio.Writer, rc *http.ResponseController) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	return rc.Flush()
}

// auditExport writes the events matching the search parameters, one a line: format=jsonl (the
// default) gives warden's events, each its canonical encoding with its hash; format=ocsf gives
// OCSF events. since, until and the other filters apply; limit and newest do not.
func (a *API) auditExport(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	q := r.URL.Query()
	enc, err := auditsink.EncoderFor(q.Get("format"))
	if err != nil {
		return warden.Errorf(warden.EInvalid, "format must be jsonl or ocsf")
	}
	q.Del("format")
	if q.Has("limit") || q.Has("newest") {
		return warden.Errorf(warden.EInvalid, "an export takes no limit or newest: narrow it with since and until")
	}
	f, err := ParseAuditFilter(q, time.Now())
	if err != nil {
		return err
	}
	// The first page is read before the answer begins, so that a failing store is an error
	// status rather than an empty export.
	f.Limit = streamPage
	evs, err := a.Store.AuditEvents(r.Context(), f)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	bw := bufio.NewWriterSize(w, 64<<10)
	for {
		for _, ev := range evs {
			line, err := enc(ev)
			if err != nil {
				a.Log.Error("audit export: encoding an event failed", "seq", ev.Seq, "err", err)
				return nil
			}
			bw.Write(line)
			bw.WriteByte('\n')
		}
		if len(evs) < streamPage {
			break
		}
		f.AfterSeq = evs[len(evs)-1].Seq
		if evs, err = a.Store.AuditEvents(r.Context(), f); err != nil {
			a.Log.Error("audit export: reading the store failed", "err", err)
			return nil // the answer has begun; cutting it short is all that is left
		}
	}
	if err := bw.Flush(); err != nil && r.Context().Err() == nil {
		a.Log.Warn("audit export: writing failed", "err", err)
	}
	return nil
}

// CheckpointResponse is the wire type apitype.CheckpointResponse; see there.
type CheckpointResponse = apitype.CheckpointResponse

func (a *API) auditCheckpoint(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	return a.answerCheckpoint(w, r, func(svc AuditService) (*warden.AuditCheckpoint, error) {
		return svc.LatestCheckpoint(r.Context())
	})
}

// auditSignCheckpoint signs a checkpoint of the log as it is now: what an auditor exports to
// keep elsewhere. It adds a signature, never an event.
func (a *API) auditSignCheckpoint(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	return a.answerCheckpoint(w, r, func(svc AuditService) (*warden.AuditCheckpoint, error) {
		c, err := svc.Checkpoint(r.Context())
		if err == nil && c == nil {
			err = warden.Errorf(warden.ENotFound, "the audit log is empty")
		}
		return c, err
	})
}

func (a *API) answerCheckpoint(w http.ResponseWriter, r *http.Request, get func(AuditService) (*warden.AuditCheckpoint, error)) error {
	svc, err := a.auditService()
	if err != nil {
		return err
	}
	c, err := get(svc)
	if err != nil {
		return err
	}
	key, err := svc.VerifierKey()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, CheckpointResponse{AuditCheckpoint: c, VerifierKey: key})
	return nil
}

func (a *API) auditKey(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	svc, err := a.auditService()
	if err != nil {
		return err
	}
	key, err := svc.VerifierKey()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"verifier_key": key})
	return nil
}

// VerifyRequest is the wire type apitype.VerifyRequest; see there.
type VerifyRequest = apitype.VerifyRequest

// auditVerify verifies the log in the server's store. A broken log is a report with ok false,
// not an error: the request did what it was asked.
func (a *API) auditVerify(w http.ResponseWriter, r *http.Request, p *warden.Principal) error {
	svc, err := a.auditService()
	if err != nil {
		return err
	}
	var req VerifyRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	if len(req.Checkpoint) > checkpoint.MaxNoteSize {
		return warden.Errorf(warden.EInvalid, "the checkpoint is over %d bytes", checkpoint.MaxNoteSize)
	}
	report, err := svc.Verify(r.Context(), []byte(strings.ReplaceAll(req.Checkpoint, "\r\n", "\n")))
	if err != nil {
		var we *warden.Error
		if !errors.As(err, &we) {
			err = warden.WrapError(warden.EInternal, "verification failed", err)
		}
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
