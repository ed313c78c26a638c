package identity

import (
	"cmp"
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// RefusalLimits bound how many unauthenticated refusals are recorded one by one. Anyone can send
// junk credentials, and each refusal recorded in full is a durable event: without a bound one
// client fills the disk, and since the audit log fails closed, a full disk denies every agent.
type RefusalLimits struct {
	// PerSource refusals a minute from one source (an IPv4 address, or an IPv6 /64) are
	// recorded in full, as a token bucket of that size refilled over a minute. Zero records
	// none in full: every refusal goes into the summaries.
	PerSource int
	// Total refusals a minute from all sources together are recorded in full, so that many
	// sources cannot add up to an unbounded log either.
	Total int
	// Interval is how often the refusals over the limits are recorded as one summary event;
	// default 1m.
	Interval time.Duration
	// MaxSources bounds the sources remembered (the buckets, least recently seen dropped first,
	// and the sources named in one summary); default 10000.
	MaxSources int
	// Clock tells the time of refusals and times the summaries; default the real clock.
	Clock clock.Clock
}

const (
	defaultRefusalInterval   = time.Minute
	defaultRefusalMaxSources = 10_000
	// summarySourcesListed is how many sources a summary names, most refusals first; the rest
	// are counted.
	summarySourcesListed = 20
	// maxSummaryReasons bounds the reasons a summary counts apart; reasons are codes warden
	// chooses, so this only guards against a new producer passing free text as a reason.
	maxSummaryReasons = 32
)

// RefusalLog records unauthenticated refusals (token.refuse events of a caller that proved no
// identity) within RefusalLimits: those within the limits are appended to the audit log in
// full; the others are counted, by source and reason, and every Interval one
// token.refuse.summary event records the counts. Nothing is left unrecorded, and nothing
// grows without bound. The refusal itself (the 401) is the caller's and happens every time.
//
// A refusal of an authenticated agent is not one of these: the agent is known and can be
// stopped, so it is recorded in full through the audit log itself.
type RefusalLog struct {
	audit  warden.AuditLog
	limits RefusalLimits
	log    *slog.Logger

	mu      sync.Mutex
	total   bucket
	sources map[string]*list.Element // of *sourceBucket, in lru
	lru     *list.List               // most recently seen first
	pending refusalSummary
}

var _ warden.AuditLog = (*RefusalLog)(nil)

// bucket is a token bucket of size n refilled at n a minute.
type bucket struct {
	tokens float64
	at     time.Time
}

func (b *bucket) take(n int, now time.Time) bool {
	if n <= 0 {
		return false
	}
	if b.at.IsZero() {
		b.tokens = float64(n)
	} else if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(float64(n), b.tokens+elapsed.Minutes()*float64(n))
	}
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

type sourceBucket struct {
	source string
	bucket
}

// refusalSummary is what was counted since the last summary.
type refusalSummary struct {
	since    time.Time
	count    int64
	sources  map[string]int64 // at most MaxSources
	overflow int64            // refusals from sources past MaxSources
	reasons  map[string]int64
}

// NewRefusalLog returns a RefusalLog that records into audit. Run writes its summaries.
func NewRefusalLog(audit warden.AuditLog, limits RefusalLimits, log *slog.Logger) *RefusalLog {
	if limits.Interval <= 0 {
		limits.Interval = defaultRefusalInterval
	}
	if limits.MaxSources <= 0 {
		limits.MaxSources = defaultRefusalMaxSources
	}
	limits.Clock = clock.Or(limits.Clock)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &RefusalLog{audit: audit, limits: limits, log: log, sources: map[string]*list.Element{}, lru: list.New()}
}

// Append records ev, an unauthenticated refusal whose actor.source is the caller's address:
// in full (returning the audit log's answer) while its source and all sources together are
// within the limits, else as a count in the next summary (returning nil).
func (l *RefusalLog) Append(ctx context.Context, ev *warden.AuditEvent) error {
	if l.admit(ev) {
		return l.audit.Append(ctx, ev)
	}
	return nil
}

func (l *RefusalLog) admit(ev *warden.AuditEvent) bool {
	source := SourceKey(ev.Actor.Source)
	now := l.limits.Clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketOf(source)
	// The source's bucket first: a source over its own limit must not use up everyone's.
	if b.take(l.limits.PerSource, now) && l.total.take(l.limits.Total, now) {
		return true
	}
	l.count(source, ev.Decision.Reason, now)
	return false
}

// bucketOf returns the source's bucket, making it the most recently seen, and forgets the least
// recently seen source when there are too many. A forgotten source starts afresh, which the
// total limit bounds.
func (l *RefusalLog) bucketOf(source string) *bucket {
	if e, ok := l.sources[source]; ok {
		l.lru.MoveToFront(e)
		return &e.Value.(*sourceBucket).bucket
	}
	if l.lru.Len() >= l.limits.MaxSources {
		oldest := l.lru.Back()
		l.lru.Remove(oldest)
		delete(l.sources, oldest.Value.(*sourceBucket).source)
	}
	sb := &sourceBucket{source: source}
	l.sources[source] = l.lru.PushFront(sb)
	return &sb.bucket
}

func (l *RefusalLog) count(source, reason string, now time.Time) {
	p := &l.pending
	if p.count == 0 {
		p.since = now
		p.sources = map[string]int64{}
		p.reasons = map[string]int64{}
	}
	p.count++
	if _, ok := p.sources[source]; ok || len(p.sources) < l.limits.MaxSources {
		p.sources[source]++
	} else {
		p.overflow++
	}
	if reason == "" {
		reason = "unknown"
	}
	if _, ok := p.reasons[reason]; !ok && len(p.reasons) >= maxSummaryReasons {
		reason = "other"
	}
	p.reasons[reason]++
}

// Run writes a summary every Interval while refusals are being counted, and a last one when
// ctx ends, until ctx ends.
func (l *RefusalLog) Run(ctx context.Context) error {
	t := l.limits.Clock.NewTicker(l.limits.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if err := l.Flush(final); err != nil {
				l.log.Error("recording the last refusal summary failed", "err", err)
			}
			return nil
		case <-t.C():
			if err := l.Flush(ctx); err != nil && ctx.Err() == nil {
				l.log.Error("recording a refusal summary failed; its counts go into the next", "err", err)
			}
		}
	}
}

// RefusalCounts is target.arguments of a token.refuse.summary event.
type RefusalCounts struct {
	Since time.Time `json:"since"` // the first refusal counted
	Until time.Time `json:"until"` // when the summary was made
	// Count is every refusal not recorded one by one in [since, until].
	Count int64 `json:"count"`
	// Sources names the sources with the most refusals (at most 20), and DistinctSources
	// counts all; SourcesOverflow counts refusals from sources past the bound on how many are
	// remembered (audit.refusals.max_sources), whose number is not known.
	Sources         []SourceCount `json:"sources"`
	DistinctSources int           `json:"distinct_sources"`
	SourcesOverflow int64         `json:"sources_overflow,omitempty"`
	// Reasons counts the refusals by decision.reason, most first. A list, not an object keyed
	// by reason: the audit log redacts the value of a member named like "invalid_token".
	Reasons []ReasonCount `json:"reasons"`
}

// SourceCount is the refusals counted from one source.
type SourceCount struct {
	Source string `json:"source"`
	Count  int64  `json:"count"`
}

// ReasonCount is the refusals counted for one reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// Flush records what has been counted since the last summary as one token.refuse.summary
// event, if anything has. When the audit log refuses it, the counts stay for the next.
func (l *RefusalLog) Flush(ctx context.Context) error {
	l.mu.Lock()
	p := l.pending
	l.pending = refusalSummary{}
	l.mu.Unlock()
	if p.count == 0 {
		return nil
	}
	ev, err := p.event(l.limits.Clock.Now())
	if err == nil {
		err = l.audit.Append(ctx, ev)
	}
	if err != nil {
		l.mu.Lock()
		l.pending.merge(p, l.limits.MaxSources)
		l.mu.Unlock()
		return fmt.Errorf("identity: refusal summary: %w", err)
	}
	return nil
}

func (p refusalSummary) event(now time.Time) (*warden.AuditEvent, error) {
	c := RefusalCounts{Since: p.since.UTC(), Until: now.UTC(), Count: p.count, DistinctSources: len(p.sources),
		SourcesOverflow: p.overflow}
	for r, n := range p.reasons {
		c.Reasons = append(c.Reasons, ReasonCount{Reason: r, Count: n})
	}
	slices.SortFunc(c.Reasons, func(a, b ReasonCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Reason, b.Reason))
	})
	for s, n := range p.sources {
		c.Sources = append(c.Sources, SourceCount{Source: s, Count: n})
	}
	slices.SortFunc(c.Sources, func(a, b SourceCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Source, b.Source))
	})
	c.Sources = c.Sources[:min(len(c.Sources), summarySourcesListed)]
	args, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("%d refused credentials from %d sources not recorded one by one (over the recording limits)", p.count, len(p.sources))
	if len(c.Sources) > 0 {
		msg += fmt.Sprintf("; most from %s (%d)", c.Sources[0].Source, c.Sources[0].Count)
	}
	return &warden.AuditEvent{
		Type:     warden.EventTokenRefuseSummary,
		Actor:    warden.EventActor{Kind: warden.ActorSystem, Name: "warden"},
		Target:   warden.EventTarget{Action: warden.EventTokenRefuse, Risk: warden.RiskMedium, Arguments: args},
		Decision: warden.EventDecision{Effect: warden.EffectDeny, Reason: warden.ReasonRefusalsSummarized, Message: msg},
	}, nil
}

// merge adds q, a summary that could not be recorded, back into p.
func (p *refusalSummary) merge(q refusalSummary, maxSources int) {
	if p.count == 0 {
		*p = q
		return
	}
	p.since = q.since // q was counted first
	p.count += q.count
	p.overflow += q.overflow
	for s, n := range q.sources {
		if _, ok := p.sources[s]; ok || len(p.sources) < maxSources {
			p.sources[s] += n
		} else {
			p.overflow += n
		}
	}
	for r, n := range q.reasons {
		if _, ok := p.reasons[r]; !ok && len(p.reasons) >= maxSummaryReasons {
			r = "other"
		}
		p.reasons[r] += n
	}
}

// SourceKey is the source a refusal is counted against: the IP address of addr (a remote
// address, "IP:port"), an IPv6 address as its /64, since one client commonly holds a whole
// /64; "unknown" when addr is no IP address.
func SourceKey(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "unknown"
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}
