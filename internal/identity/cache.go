package identity

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden"
)

// cachedToken is a token whose signature and static claims have been verified. It is never
// changed once cached.
type cachedToken struct {
	claims warden.Claims
	kid    string
	// prev and next link the entries of one agent in its shard (cacheShard.agents), so that a
	// kill counts an agent's sessions without reading every agent's tokens. Guarded by the
	// shard's lock; nothing else in an entry changes once it is cached.
	prev, next *cachedToken
}

// cacheShards spreads the read locks of concurrent verifications over several cache lines.
const cacheShards = 16

// verifiedCache maps a token's SHA-256 to its verified claims, so that a token is checked
// with Ed25519 once, not on every call. Keying by hash keeps no token in memory.
type verifiedCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[[sha256.Size]byte]*cachedToken
	agents  map[string]*cachedToken // the newest entry of each agent (client ID), heading its list
	max     int
	hits    atomic.Uint64
	misses  atomic.Uint64
}

func newVerifiedCache(size int) *verifiedCache {
	c := &verifiedCache{}
	for i := range c.shards {
		c.shards[i].entries = make(map[[sha256.Size]byte]*cachedToken)
		c.shards[i].agents = make(map[string]*cachedToken)
		c.shards[i].max = max(1, size/cacheShards)
	}
	return c
}

func (c *verifiedCache) shard(h [sha256.Size]byte) *cacheShard { return &c.shards[h[0]%cacheShards] }

func (c *verifiedCache) get(h [sha256.Size]byte) *cachedToken {
	sh := c.shard(h)
	sh.mu.RLock()
	e := sh.entries[h]
	sh.mu.RUnlock()
	if e == nil {
		sh.misses.Add(1)
	} else {
		sh.hits.Add(1)
	}
	return e
}

// put adds an entry. A full shard first drops the entries of tokens that expired before
// expiredBefore, then, if still full, a tenth of its entries at random: a dropped token only
// costs one more signature check.
func (c *verifiedCache) put(h [sha256.Size]byte, e *cachedToken, expiredBefore time.Time) {
	sh := c.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if len(sh.entries) >= sh.max {
		for k, v := range sh.entries {
			if v.claims.ExpiresAt.Before(expiredBefore) {
				sh.remove(k, v)
			}
		}
		for k, v := range sh.entries {
			if len(sh.entries) < sh.max-sh.max/10 {
				break
			}
			sh.remove(k, v)
		}
	}
	if old := sh.entries[h]; old != nil {
		sh.remove(h, old)
	}
	sh.entries[h] = e
	e.prev, e.next = nil, sh.agents[e.claims.ClientID]
	if e.next != nil {
		e.next.prev = e
	}
	sh.agents[e.claims.ClientID] = e
}

// remove drops an entry; the caller holds sh.mu.
func (sh *cacheShard) remove(k [sha256.Size]byte, v *cachedToken) {
	delete(sh.entries, k)
	switch {
	case v.prev != nil:
		v.prev.next = v.next
	case v.next != nil:
		sh.agents[v.claims.ClientID] = v.next
	default:
		delete(sh.agents, v.claims.ClientID)
	}
	if v.next != nil {
		v.next.prev = v.prev
	}
	v.prev, v.next = nil, nil
}

// prune drops the entries of tokens that expired before t.
func (c *verifiedCache) prune(t time.Time) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for k, v := range sh.entries {
			if v.claims.ExpiresAt.Before(t) {
				sh.remove(k, v)
			}
		}
		sh.mu.Unlock()
	}
}

// CacheStats describes the verified-token cache, for metrics: a low hit rate means most calls
// pay for an Ed25519 verification.
type CacheStats struct {
	Entries int
	Hits    uint64
	Misses  uint64
}

// CacheStats returns the current size and the hits and misses since the service started.
func (s *Service) CacheStats() CacheStats {
	var st CacheStats
	for i := range s.cache.shards {
		sh := &s.cache.shards[i]
		sh.mu.RLock()
		st.Entries += len(sh.entries)
		sh.mu.RUnlock()
		st.Hits += sh.hits.Load()
		st.Misses += sh.misses.Load()
	}
	return st
}

// LiveSessions counts the distinct sessions of an agent's tokens that this replica has verified
// and that have not expired: what a kill invalidates here. Tokens never presented are not counted.
func (s *Service) LiveSessions(agentID string) int {
	now := s.cfg.Clock.Now()
	sessions := map[string]struct{}{}
	for i := range s.cache.shards {
		sh := &s.cache.shards[i]
		sh.mu.RLock()
		for e := sh.agents[agentID]; e != nil; e = e.next {
			if e.claims.ExpiresAt.After(now) {
				sessions[e.claims.SessionID] = struct{}{}
			}
		}
		sh.mu.RUnlock()
	}
	return len(sessions)
}
