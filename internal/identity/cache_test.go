package identity

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/clock"
)

// The per-agent index of the verified-token cache follows every way an entry comes and goes
// (put, replacement, eviction of a full shard, prune), so a kill's count of an agent's live
// sessions is the count a scan of every entry gives.
func TestCacheAgentIndex(t *testing.T) {
	t.Parallel()
	now := time.Now()
	c := newVerifiedCache(16 * 8) // 8 entries a shard
	scan := func(agent string) int {
		sessions := map[string]bool{}
		for i := range c.shards {
			for _, e := range c.shards[i].entries {
				if e.claims.ClientID == agent && e.claims.ExpiresAt.After(now) {
					sessions[e.claims.SessionID] = true
				}
			}
		}
		return len(sessions)
	}
	indexed := func(agent string) int {
		s := &Service{cache: c, cfg: Config{Clock: clock.NewFake(now)}}
		return s.LiveSessions(agent)
	}
	check := func(when string) {
		t.Helper()
		for _, a := range []string{"ag_a", "ag_b", "ag_c"} {
			if got, want := indexed(a), scan(a); got != want {
				t.Fatalf("%s: LiveSessions(%s) = %d, a scan finds %d", when, a, got, want)
			}
		}
		for i := range c.shards {
			sh := &c.shards[i]
			n := 0
			for agent, head := range sh.agents {
				if head.prev != nil {
					t.Fatalf("%s: shard %d: the head of %s's list has a predecessor", when, i, agent)
				}
				for e := head; e != nil; e = e.next {
					if e.claims.ClientID != agent || e.next != nil && e.next.prev != e {
						t.Fatalf("%s: shard %d: %s's list is broken", when, i, agent)
					}
					n++
				}
			}
			if n != len(sh.entries) {
				t.Fatalf("%s: shard %d lists %d entries, holds %d", when, i, n, len(sh.entries))
			}
		}
	}
	put := func(i int, agent string, ttl time.Duration) {
		h := sha256.Sum256([]byte(fmt.Sprint("token", i)))
		c.put(h, &cachedToken{claims: warden.Claims{ClientID: agent, SessionID: fmt.Sprint("s", i%7), ExpiresAt: now.Add(ttl)}}, now)
	}
	for i := range 100 {
		put(i, []string{"ag_a", "ag_b"}[i%2], time.Hour)
	}
	check("after filling")
	for i := range 50 {
		put(i, "ag_c", time.Duration(i%3-1)*time.Minute) // replaced, some already expired
	}
	check("after replacing")
	for i := 100; i < 400; i++ {
		put(i, "ag_a", time.Hour) // full shards evict
	}
	check("after evictions")
	c.prune(now.Add(30 * time.Second))
	check("after prune")
	if indexed("ag_a") == 0 {
		t.Fatal("no live sessions left to count: the test checks nothing")
	}
}
