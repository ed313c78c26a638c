package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apiclient"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/checkpoint"
)

var auditCommands = []command{
	{"audit search", "[--agent NAME] [--tool T] [--action A] [--type T] [--decision D] [--session S] [--on-behalf-of P] [--min-risk R] [--since 1h] [--until T] [--limit N] [--cursor SEQ | --all]", "search the audit log, newest first", auditSearch},
	{"audit tail", "[-f] [-n N] [filters as for search] [--min-risk high]", "show the newest events, and with -f follow the log as it grows", auditTail},
	{"audit verify", "[--checkpoint FILE] [--store URL [--key VKEY]]", "verify the hash chain and every checkpoint; report the first break", auditVerify},
	{"audit checkpoint", "--export FILE", "sign a checkpoint of the log as it is now and write it (--export FILE) for keeping elsewhere", auditCheckpoint},
	{"audit export", "[--since T] [--until T] [--format jsonl|ocsf] [filters] [-o FILE]", "write events as JSON lines, warden's or OCSF", auditExport},
	{"audit key", "", "print the public key that verifies checkpoints (signed-note verifier key)", auditKey},
}

// filterFlags adds the search filters as flags that set query parameters.
func (inv *invocation) filterFlags(q url.Values, withLimit bool) {
	flags := []struct{ flag, param, help string }{
		{"agent", "agent", "agent name or id"},
		{"tool", "tool", "tool name"},
		{"action", "action", "action"},
		{"type", "type", "event type, or a prefix such as agent.*"},
		{"decision", "decision", "allow, deny, approval_required, …"},
		{"session", "session", "session id"},
		{"on-behalf-of", "on_behalf_of", "the person an agent acted for"},
		{"min-risk", "min_risk", "events of at least this risk: low, medium, high or critical"},
		{"since", "since", "RFC 3339 time or a duration ago (1h, 7d)"},
		{"until", "until", "RFC 3339 time or a duration ago"},
	}
	if withLimit {
		flags = append(flags, struct{ flag, param, help string }{"limit", "limit", "events a page (default 100, max 1000)"})
	}
	for _, f := range flags {
		inv.fs.Func(f.flag, f.help, func(v string) error { q.Set(f.param, v); return nil })
	}
}

// auditSearch prints the events a search matches, newest first, a page at a time: --cursor SEQ
// shows the page before SEQ, --all every page. A page that is not all of the search says so, and
// how to see the rest, on stderr, so that --json output stays one event a line.
func auditSearch(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	q := url.Values{}
	inv.filterFlags(q, true)
	var cursor int64
	var all bool
	inv.fs.Int64Var(&cursor, "cursor", 0, "show the events before this seq (the next page, as the previous one said)")
	inv.fs.BoolVar(&all, "all", false, "every event the search matches, page after page")
	if _, err := inv.parse(); err != nil {
		return err
	}
	if cursor < 0 {
		return usagef("--cursor must be an event's seq")
	}
	if all && !q.Has("limit") {
		q.Set("limit", "1000")
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	q.Set("newest", "true")
	var table *tabwriter.Writer
	if !inv.json {
		table = tabwriter.NewWriter(inv.env.Stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(table, strings.Join(eventHeader, "\t"))
	}
	shown := 0
	for {
		if cursor > 0 {
			q.Set("before", strconv.FormatInt(cursor, 10))
		}
		page, err := c.AuditSearch(ctx, q)
		if err != nil {
			return err
		}
		slices.Reverse(page.Events) // the server answers in log order
		if inv.json {
			if err := writeEventLines(inv.env.Stdout, page.Events); err != nil {
				return err
			}
		} else {
			for _, ev := range page.Events {
				fmt.Fprintln(table, strings.Join(eventRow(ev), "\t"))
			}
			if err := table.Flush(); err != nil {
				return err
			}
		}
		shown += len(page.Events)
		if len(page.Events) == 0 {
			return nil
		}
		limit := apitype.AuditDefaultLimit
		if q.Has("limit") {
			limit, _ = strconv.Atoi(q.Get("limit"))
		}
		if len(page.Events) < limit {
			return nil // the last page
		}
		next := page.Events[len(page.Events)-1].Seq
		if !all {
			total, err := strconv.ParseInt(strings.TrimSuffix(page.Total, "+"), 10, 64)
			if err == nil && (total > int64(shown) || strings.HasSuffix(page.Total, "+")) {
				fmt.Fprintf(inv.env.Stderr, "showing %d of %s, newest first — use --cursor %d for the next page, or --all\n", shown, page.Total, next)
			}
			return nil
		}
		cursor = next
	}
}

var eventHeader = []string{"SEQ", "TIME", "TYPE", "ACTOR", "TARGET", "RISK", "EFFECT", "DETAIL"}

func eventRow(ev *warden.AuditEvent) []string {
	actor := ev.Actor.Name
	if actor == "" {
		actor = ev.Actor.ID
	}
	target := strings.Trim(strings.Join([]string{ev.Target.Tool, ev.Target.Action, ev.Target.Resource}, " "), " ")
	detail := ev.Decision.Reason
	if ev.Decision.Message != "" {
		detail = strings.TrimSpace(detail + " " + ev.Decision.Message)
	}
	if ev.Type == warden.EventToolResult {
		detail = strings.TrimSpace(fmt.Sprintf("%s %d %.1fms", ev.Outcome.Status, ev.Outcome.UpstreamStatus, ev.Outcome.LatencyMS))
	}
	risk := string(ev.Target.Risk)
	if risk == "" {
		risk = "-"
	}
	return []string{strconv.FormatInt(ev.Seq, 10), fmtTime(ev.Time), ev.Type, ev.Actor.Kind + ":" + actor,
		truncate(target, 48), risk, ev.Decision.Effect, truncate(detail, 60)}
}

// writeEventLines writes one event a line, for jq and log shippers.
func writeEventLines(w io.Writer, evs []*warden.AuditEvent) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, ev := range evs {
		if err := enc.Encode(ev); err != nil {
			return err
		}
	}
	return nil
}

func auditTail(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	q := url.Values{}
	inv.filterFlags(q, false)
	var follow bool
	var n int
	inv.fs.BoolVar(&follow, "f", false, "follow: print events as they are committed until interrupted")
	inv.fs.IntVar(&n, "n", 20, "how many of the newest events to show first (0 to 1000)")
	if _, err := inv.parse(); err != nil {
		return err
	}
	if n < 0 || n > 1000 {
		return usagef("-n must be between 0 and 1000")
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	out := &tailPrinter{w: inv.env.Stdout, json: inv.json}
	after := int64(0)
	if n > 0 || !follow {
		first := url.Values{}
		for k, v := range q {
			first[k] = v
		}
		first.Set("newest", "true")
		first.Set("limit", strconv.Itoa(max(n, 1)))
		evs, head, err := c.AuditEvents(ctx, first)
		if err != nil {
			return err
		}
		if head < 0 {
			return warden.Errorf(warden.EInternal, "the server did not say where the log ends (%s)", apitype.AuditHeadHeader)
		}
		if n == 0 {
			evs = nil
		}
		for _, ev := range evs {
			if err := out.print(ev); err != nil {
				return err
			}
		}
		// Follow on from what the search saw, so that nothing is shown twice or missed.
		after = head
		if len(evs) > 0 {
			after = max(after, evs[len(evs)-1].Seq)
		}
	}
	if !follow {
		return nil
	}
	q.Set("after", strconv.FormatInt(after, 10))
	err = c.FollowAudit(ctx, q, func(ev *warden.AuditEvent) error { return out.print(ev) })
	if ctx.Err() != nil {
		return nil // interrupted, which is how -f ends
	}
	return err
}

// tailPrinter prints events one at a time as they come: fixed columns, since a table cannot wait
// for the widest row.
type tailPrinter struct {
	w      io.Writer
	json   bool
	header bool
}

func (p *tailPrinter) print(ev *warden.AuditEvent) error {
	if p.json {
		return writeEventLines(p.w, []*warden.AuditEvent{ev})
	}
	const format = "%-7s %-20s %-20s %-22s %-40s %-8s %-17s %s\n"
	row := func(cols []string) error {
		args := make([]any, len(cols))
		for i, c := range cols {
			args[i] = c
		}
		_, err := fmt.Fprintf(p.w, format, args...)
		return err
	}
	if !p.header {
		p.header = true
		if err := row(eventHeader); err != nil {
			return err
		}
	}
	return row(eventRow(ev))
}

func auditVerify(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var file, store, key string
	inv.fs.StringVar(&file, "checkpoint", "", "an exported checkpoint (warden audit checkpoint --export) that the log must still extend")
	inv.fs.StringVar(&store, "store", "", "read the store directly (sqlite:PATH or a postgres:// URL) instead of asking the server")
	inv.fs.StringVar(&key, "key", "", "with --store: the verifier key, or a file holding it, that checkpoints must be signed by (default: the keys in the store)")
	if _, err := inv.parse(); err != nil {
		return err
	}
	var external []byte
	if file != "" {
		b, err := warden.ReadFileLimited(file, checkpoint.MaxNoteSize)
		if err != nil {
			return warden.Errorf(warden.EInvalid, "--checkpoint: %v", err)
		}
		external = b
	}
	if key != "" && store == "" {
		return usagef("--key goes with --store: the server verifies with its own key")
	}
	var report *apitype.VerifyReport
	var err error
	if store != "" {
		report, err = verifyStore(ctx, store, key, external)
	} else {
		var c *apiclient.Client
		if c, err = inv.client(); err == nil {
			report, err = c.VerifyAudit(ctx, apitype.VerifyRequest{Checkpoint: string(external)})
		}
	}
	if err != nil {
		return err
	}
	if err := inv.print(report, func(w io.Writer) { printReport(w, report) }); err != nil {
		return err
	}
	if report.Break != nil {
		return fmt.Errorf("the audit log is broken: %s at seq %d: %s", report.Break.Kind, report.Break.Seq, report.Break.Message)
	}
	return nil
}

func printReport(w io.Writer, r *apitype.VerifyReport) {
	status := "intact"
	if r.Break != nil {
		status = "BROKEN"
	}
	events := strconv.FormatInt(r.Events, 10)
	if r.Events > 0 {
		events += fmt.Sprintf(" (seq %d to %d)", r.First, r.Last)
	}
	pruned := ""
	if r.Anchor > 0 {
		pruned = fmt.Sprintf("events 1 to %d, anchored by the checkpoint of that size", r.Anchor)
	}
	extends := ""
	if r.Extends > 0 && r.Break == nil {
		extends = fmt.Sprintf("the checkpoint of size %d", r.Extends)
	}
	kv(w, "log", status, "events", events, "head", r.Head, "origin", r.Origin, "pruned", pruned,
		"checkpoints", strconv.Itoa(r.Checkpoints)+" verified", "extends", extends, "elapsed", r.Elapsed)
	if b := r.Break; b != nil {
		kv(w, "break", b.Kind, "at seq", strconv.FormatInt(b.Seq, 10), "what", b.Message)
	}
}

func auditCheckpoint(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	var file string
	inv.fs.StringVar(&file, "export", "", "write the signed checkpoint to this file")
	if _, err := inv.parse(); err != nil {
		return err
	}
	if file == "" {
		return usagef("--export FILE is required (usage: warden audit checkpoint --export FILE)")
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	cp, err := c.SignCheckpoint(ctx)
	if err != nil {
		return err
	}
	if cp.AuditCheckpoint == nil || cp.Note == "" {
		return warden.Errorf(warden.EInternal, "the server sent no checkpoint")
	}
	if err := os.WriteFile(file, []byte(cp.Note), 0o644); err != nil {
		return fmt.Errorf("--export: %w", err)
	}
	return inv.print(cp, func(w io.Writer) {
		kv(w, "size", strconv.FormatInt(cp.Size, 10), "hash", cp.Hash, "time", fmtTime(cp.Time), "key", cp.VerifierKey, "written to", file)
	})
}

func auditExport(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	q := url.Values{}
	inv.filterFlags(q, false)
	var format, out string
	inv.fs.StringVar(&format, "format", "jsonl", "jsonl (warden's events, each with its hash) or ocsf")
	inv.fs.StringVar(&out, "o", "", "write to this file instead of standard output")
	if _, err := inv.parse(); err != nil {
		return err
	}
	if format != "jsonl" && format != "ocsf" {
		return usagef("--format must be jsonl or ocsf")
	}
	q.Set("format", format)
	c, err := inv.client()
	if err != nil {
		return err
	}
	body, err := c.ExportAudit(ctx, q)
	if err != nil {
		return err
	}
	defer body.Close()
	w := inv.env.Stdout
	if out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("-o: %w", err)
		}
		defer f.Close()
		w = f
	}
	if _, err := io.Copy(w, body); err != nil {
		return warden.WrapError(warden.EUnavailable, "the export was cut short", err)
	}
	return nil
}

func auditKey(ctx context.Context, inv *invocation) error {
	inv.clientFlags()
	if _, err := inv.parse(); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	k, err := c.VerifierKey(ctx)
	if err != nil {
		return err
	}
	return inv.print(k, func(w io.Writer) { fmt.Fprintln(w, k.VerifierKey) })
}
