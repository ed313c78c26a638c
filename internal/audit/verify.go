package audit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/checkpoint"
)

// The kinds of break verification names.
const (
	BreakAltered   = "altered"   // an event's contents changed after it was written
	BreakDeleted   = "deleted"   // events are missing from the chain
	BreakInserted  = "inserted"  // an event that warden did not write is in the chain
	BreakReordered = "reordered" // an event is at another event's place
	BreakTruncated = "truncated" // the log ends before a signed checkpoint's size
	BreakRewritten = "rewritten" // the chain is whole but disagrees with a signed checkpoint
	// BreakCheckpoint is a stored checkpoint whose signature, origin or contents do not verify.
	BreakCheckpoint = "bad_checkpoint"
	// BreakIndex is a copy the store keeps for search (actor_name, tool, time, …) that differs
	// from the event's body: the chain is whole, but a search by that column misses or
	// misplaces the event.
	BreakIndex = "index_mismatch"
)

// Break is the wire type apitype.AuditBreak; see there.
type Break = apitype.AuditBreak

// Report is the wire type apitype.VerifyReport; see there.
type Report = apitype.VerifyReport

// VerifyOptions say which keys are trusted and what else to prove.
type VerifyOptions struct {
	// Verifiers are the checkpoint keys whose signatures are accepted. A checkpoint no
	// verifier accepts is a break.
	Verifiers []note.Verifier
	// External is an exported checkpoint the log must extend: it must hold an event of that
	// size with that hash.
	External []byte
	// Progress, when set, is told how many events have been checked so far, after each one.
	Progress func(checked int64)
}

// Source is what verification reads.
type Source interface {
	ScanAuditRecords(ctx context.Context, after int64, fn func(*warden.AuditRecord) error) error
	AuditCheckpoints(ctx context.Context) ([]*warden.AuditCheckpoint, error)
}

// expectation is a signed statement the log must agree with: event size has hash.
type expectation struct {
	size int64
	hash string
	what string // "the checkpoint of size 10 signed 2026-…", "the checkpoint in the file"
}

// link is one record as verification sees it: what the store says and what the body says.
type link struct {
	seq      int64  // the seq column
	hash     string // the hash column
	sum      string // SHA-256 of the body
	parsed   bool
	bodySeq  int64
	bodyPrev string
	index    *warden.AuditIndexDiff // the first copy kept for search that differs from the body
}

func readLink(r *warden.AuditRecord) link {
	sum := sha256.Sum256(r.Body)
	l := link{seq: r.Seq, hash: r.Hash, sum: hex.EncodeToString(sum[:])}
	var body warden.AuditEvent
	if json.Unmarshal(r.Body, &body) == nil {
		l.parsed, l.bodySeq, l.bodyPrev = true, body.Seq, body.PrevHash
		if r.Index != nil {
			if d, ok := r.Index.Diff(warden.AuditIndexOf(&body)); ok {
				l.index = &d
			}
		}
	}
	return l
}

// verifier walks the chain one record behind the scan, so that each record is judged knowing the
// next: that is what tells an inserted event from an altered one, or a deletion from a swap.
type verifier struct {
	report  *Report
	exps    []expectation
	next    int // the first expectation not yet met
	anchors map[int64]string
	started bool
	prevSeq int64
	prev    string
	matched int64 // size of the last checkpoint the chain agreed with
	// index is the first copy kept for search that differs from its body. It is reported only
	// if the chain itself is whole: a break of the chain says more about what was done.
	index *Break
}

var errStop = errors.New("stop")

// Verify checks the log in src: every stored checkpoint's signature, then every event in seq
// order — its hash against its body, its seq against its place, its prev_hash against the event
// before — and that the chain agrees with every checkpoint and with opts.External. It reports the
// first break. An error means verification could not be done, not that the log is broken.
func Verify(ctx context.Context, src Source, opts VerifyOptions) (*Report, error) {
	start := time.Now()
	report := &Report{}
	v := &verifier{report: report, anchors: map[int64]string{}}
	cs, err := src.AuditCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	if len(cs) > 0 && len(opts.Verifiers) == 0 {
		return nil, warden.Errorf(warden.EInvalid, "the log has checkpoints but there is no checkpoint key to verify them with")
	}
	for _, c := range cs {
		if b := v.addStored(c, opts.Verifiers); b != nil {
			report.Break = b
			return v.finish(start), nil
		}
	}
	if len(opts.External) > 0 {
		c, _, err := checkpoint.Open(opts.External, opts.Verifiers...)
		if err != nil {
			return nil, warden.WrapError(warden.EInvalid, "the checkpoint to extend is not a checkpoint signed by this log's key", err)
		}
		if report.Origin != "" && c.Origin != report.Origin {
			return nil, warden.Errorf(warden.EInvalid, "the checkpoint to extend is of log %q, not %q", c.Origin, report.Origin)
		}
		v.exps = append(v.exps, expectation{size: c.Size, hash: c.HexHash(), what: fmt.Sprintf("the exported checkpoint of size %d", c.Size)})
		report.Extends = c.Size
	}
	// Every log extends the empty one.
	v.exps = slices.DeleteFunc(v.exps, func(e expectation) bool { return e.size <= 0 })
	slices.SortStableFunc(v.exps, func(a, b expectation) int { return cmp.Compare(a.size, b.size) })

	var pending *link
	err = src.ScanAuditRecords(ctx, 0, func(r *warden.AuditRecord) error {
		cur := readLink(r)
		if pending != nil {
			if b := v.check(*pending, &cur); b != nil {
				report.Break = b
				return errStop
			}
		}
		pending = &cur
		if opts.Progress != nil {
			opts.Progress(report.Events)
		}
		return nil
	})
	switch {
	case errors.Is(err, errStop):
		return v.finish(start), nil
	case err != nil:
		return nil, err
	}
	if pending != nil {
		if b := v.check(*pending, nil); b != nil {
			report.Break = b
			return v.finish(start), nil
		}
		if opts.Progress != nil {
			opts.Progress(report.Events)
		}
	}
	// Whatever a checkpoint promised beyond the last event is gone.
	if v.next < len(v.exps) {
		e := v.exps[len(v.exps)-1]
		report.Break = &Break{Kind: BreakTruncated, Seq: v.prevSeq + 1, Message: fmt.Sprintf(
			"the log ends at seq %d, but %s covers events up to seq %d: events %d to %d were removed", v.prevSeq, e.what, e.size, v.prevSeq+1, e.size)}
	}
	return v.finish(start), nil
}

func (v *verifier) finish(start time.Time) *Report {
	if v.report.Break == nil {
		v.report.Break = v.index
	}
	v.report.OK = v.report.Break == nil
	v.report.Elapsed = time.Since(start).Round(time.Millisecond).String()
	return v.report
}

// addStored verifies a stored checkpoint's note and makes it an expectation.
func (v *verifier) addStored(c *warden.AuditCheckpoint, verifiers []note.Verifier) *Break {
	body, _, err := checkpoint.Open([]byte(c.Note), verifiers...)
	switch {
	case err != nil:
		return &Break{Kind: BreakCheckpoint, Seq: c.Size, Message: fmt.Sprintf("the checkpoint of size %d is not signed by a checkpoint key: %v", c.Size, err)}
	case body.Size != c.Size || body.HexHash() != c.Hash:
		return &Break{Kind: BreakCheckpoint, Seq: c.Size, Message: fmt.Sprintf(
			"the checkpoint stored as size %d with hash %s is signed for size %d with hash %s", c.Size, c.Hash, body.Size, body.HexHash())}
	case v.report.Origin != "" && body.Origin != v.report.Origin:
		return &Break{Kind: BreakCheckpoint, Seq: c.Size, Message: fmt.Sprintf("the checkpoint of size %d is of log %q, not %q", c.Size, body.Origin, v.report.Origin)}
	}
	v.report.Origin = body.Origin
	v.report.Checkpoints++
	v.anchors[c.Size] = c.Hash
	v.exps = append(v.exps, expectation{size: c.Size, hash: c.Hash, what: fmt.Sprintf("the checkpoint of size %d signed %s", c.Size, c.Time.UTC().Format(time.RFC3339))})
	return nil
}

// start fixes where the chain begins: at the beginning, or after a pruned prefix that a
// checkpoint anchors.
func (v *verifier) start(r link) *Break {
	v.started = true
	v.report.First = r.seq
	if r.seq == 1 {
		return nil
	}
	hash, ok := v.anchors[r.seq-1]
	if !ok {
		return &Break{Kind: BreakDeleted, Seq: 1, Message: fmt.Sprintf(
			"events 1 to %d are missing, and no checkpoint of size %d anchors a prune there", r.seq-1, r.seq-1)}
	}
	v.prevSeq, v.prev, v.matched = r.seq-1, hash, r.seq-1
	v.report.Anchor = r.seq - 1
	// Expectations inside the pruned prefix can no longer be checked against events; the
	// anchor itself is what the rest must extend, and an exported checkpoint there must agree.
	for v.next < len(v.exps) && v.exps[v.next].size <= v.prevSeq {
		e := v.exps[v.next]
		if h, ok := v.anchors[e.size]; ok && h != e.hash {
			return &Break{Kind: BreakRewritten, Seq: e.size, Message: fmt.Sprintf("%s names head %s, the stored checkpoint of that size %s", e.what, e.hash, h)}
		}
		v.next++
	}
	return nil
}

// check judges record r, whose predecessor has been verified, knowing the record after it, n
// (nil at the end), and moves on to it.
func (v *verifier) check(r link, n *link) *Break {
	if !v.started {
		if b := v.start(r); b != nil {
			return b
		}
	}
	p, ph := v.prevSeq, v.prev
	next := func(bodySeq int64, bodyPrev string) bool {
		return n != nil && n.parsed && n.bodySeq == bodySeq && (bodyPrev == "" || n.bodyPrev == bodyPrev)
	}
	switch {
	case r.seq > p+1:
		return deleted(p+1, r.seq-1, "")
	case !r.parsed:
		return &Break{Kind: BreakAltered, Seq: r.seq, Message: fmt.Sprintf("event %d is not an audit event any more: its body does not parse", r.seq)}
	case r.bodySeq > r.seq && next(r.bodySeq+1, r.sum):
		return deleted(r.seq, r.bodySeq-1, ", and the events after renumbered to hide the gap")
	case r.bodySeq > r.seq:
		return &Break{Kind: BreakReordered, Seq: r.seq, Message: fmt.Sprintf("the event at seq %d is event %d: events were moved out of order", r.seq, r.bodySeq)}
	case r.bodySeq < r.seq:
		return &Break{Kind: BreakInserted, Seq: r.bodySeq, Message: fmt.Sprintf(
			"the event at seq %d is event %d: %d event(s) were inserted from seq %d and the rest renumbered", r.seq, r.bodySeq, r.seq-r.bodySeq, r.bodySeq)}
	case r.sum != r.hash:
		return &Break{Kind: BreakAltered, Seq: r.seq, Message: fmt.Sprintf("event %d was changed after it was written: its body no longer matches its hash", r.seq)}
	case r.bodyPrev != ph && next(r.seq, ph):
		return &Break{Kind: BreakInserted, Seq: r.seq, Message: fmt.Sprintf(
			"the event at seq %d does not link to event %d; the one after it does and is the original event %d: an event was inserted", r.seq, p, r.seq)}
	case r.bodyPrev != ph && p == 0:
		return &Break{Kind: BreakAltered, Seq: r.seq, Message: fmt.Sprintf("event %d names a predecessor, but it is the first event", r.seq)}
	case r.bodyPrev != ph && p == v.report.Anchor:
		return &Break{Kind: BreakRewritten, Seq: r.seq, Message: fmt.Sprintf(
			"event %d does not extend the checkpoint of size %d that anchors the pruned events", r.seq, p)}
	case r.bodyPrev != ph:
		return &Break{Kind: BreakAltered, Seq: p, Message: fmt.Sprintf(
			"event %d was changed and its hash recomputed: event %d still names its original hash", p, r.seq)}
	}
	for v.next < len(v.exps) && v.exps[v.next].size == r.seq {
		e := v.exps[v.next]
		if e.hash != r.hash {
			if next(r.seq, "") {
				return &Break{Kind: BreakInserted, Seq: r.seq, Message: fmt.Sprintf(
					"the event at seq %d is not the one %s covers, and the event after it is the original event %d: an event was inserted", r.seq, e.what, r.seq)}
			}
			return &Break{Kind: BreakRewritten, Seq: v.matched + 1, Message: fmt.Sprintf(
				"%s names head %s but event %d has hash %s: events between seq %d and %d were changed and the chain after them recomputed",
				e.what, e.hash, r.seq, r.hash, v.matched+1, r.seq)}
		}
		v.matched = r.seq
		v.next++
	}
	if r.index != nil && v.index == nil {
		d := r.index
		v.index = &Break{Kind: BreakIndex, Seq: r.seq, Message: fmt.Sprintf(
			"event %d's %s column holds %s but its body says %s: the copy kept for search was changed, so a search by %s misses or misplaces the event",
			r.seq, d.Column, quoteShort(d.Stored), quoteShort(d.Body), d.Column)}
	}
	v.prevSeq, v.prev = r.seq, r.hash
	v.report.Events++
	v.report.Last, v.report.Head = r.seq, r.hash
	return nil
}

func deleted(from, to int64, how string) *Break {
	what := fmt.Sprintf("event %d is missing", from)
	if to > from {
		what = fmt.Sprintf("events %d to %d are missing", from, to)
	}
	return &Break{Kind: BreakDeleted, Seq: from, Message: what + how}
}

// quoteShort quotes a column's value for a break's message, cut short: the column is whatever an
// intruder wrote into it.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "…"
	}
	return strconv.Quote(s)
}
