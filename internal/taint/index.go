package taint

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash/maphash"
	"slices"
	"strings"
	"sync"

	"github.com/wardenhq/warden"
)

// seed keys the hashes of values; one per process, so a value's hash cannot be chosen from
// outside to collide with another.
var seed = maphash.MakeSeed()

// hashValue is the 64-bit hash by which the index knows a normalised value. The value itself is
// not kept. Two different values share a hash with probability 2⁻⁶⁴ per pair — with a session's
// at most ~10⁵ values and a call's ~10² arguments' values, about 10⁻¹² per call — and a
// collision can only taint an argument, never clear one. The kind is not hashed: the same
// string found as two kinds (12345678 as an account and as a number) is one value.
func hashValue(v []byte) uint64 { return maphash.Bytes(seed, v) }

// hasher hashes values for one Sessions: by the process's seed (hashValue), or — when the
// session state is shared through a store — by a key the fleet shares, so that every replica
// knows a value by the same hash. Keyed, the hash is a PRF: AES-CBC-MAC over a prefix-free
// encoding (a first block holding the value's length, then the value zero-padded to whole
// blocks), the first 8 bytes of the last block. Without the key, a hash in a database dump
// reveals nothing of its value (a dictionary of addresses cannot be tried against it), and a
// hash cannot be chosen from outside to collide; a collision still can only taint.
type hasher struct {
	block cipher.Block // nil: unkeyed
}

// newHasher keys a hasher with key: used as the AES-128 key when it is 16 bytes, else its
// SHA-256 digest's first 16 bytes; no key, unkeyed.
func newHasher(key []byte) hasher {
	if len(key) == 0 {
		return hasher{}
	}
	k := key
	if len(k) != aes.BlockSize {
		d := sha256.Sum256(key)
		k = d[:aes.BlockSize]
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		panic(err) // unreachable: a 16-byte key is valid
	}
	return hasher{block: b}
}

func (h hasher) keyed() bool { return h.block != nil }

// macBuf is the scratch of one keyed hash, owned by the caller, so that a hash allocates
// nothing.
type macBuf [2 * aes.BlockSize]byte

func (h hasher) sum(v []byte, buf *macBuf) uint64 {
	if h.block == nil {
		return hashValue(v)
	}
	state, in := buf[:aes.BlockSize], buf[aes.BlockSize:]
	clear(state)
	binary.BigEndian.PutUint64(state[8:], uint64(len(v)))
	h.block.Encrypt(state, state)
	for len(v) > 0 {
		n := copy(in, v)
		clear(in[n:])
		v = v[n:]
		subtle.XORBytes(state, state, in)
		h.block.Encrypt(state, state)
	}
	return binary.LittleEndian.Uint64(state)
}

// batch is the values extracted from one output, ready to be inserted into an index.
type batch struct {
	hashes []uint64
	kinds  []kind
	bytes  int // the text length read
	// cut: the batch holds only part of the output's values — its text was longer than the
	// budget, it had more values than a session keeps, or it was a Partial — so what the rest
	// held is unknown and the session becomes evicted.
	cut bool
}

// Partial wraps output of which only the first part was read (the gateway read a bounded prefix
// of a larger body, or a stream was cut): its values are indexed, and the session becomes
// evicted, since what the rest held is unknown.
type Partial struct{ Content any }

// extractOutput extracts the values of one output, reading at most budget bytes of its text and
// keeping at most maxValues values; the batch is cut when either bound left something unread.
func extractOutput(content any, budget, maxValues int, h hasher) *batch {
	b := &batch{}
	if p, ok := content.(Partial); ok {
		content, b.cut = p.Content, true
	}
	var buf macBuf
	e := &extractor{budget: budget}
	e.emit = func(k kind, v []byte) {
		if len(b.hashes) >= maxValues {
			e.cut, e.budget = true, 0
			return
		}
		b.hashes = append(b.hashes, h.sum(v, &buf))
		b.kinds = append(b.kinds, k)
	}
	e.content(content)
	b.bytes = budget - e.budget
	b.cut = b.cut || e.cut
	return b
}

// argValues are the hashes of the values of one argument.
type argValues struct {
	name   string
	hashes []uint64
}

// argExtractor extracts the values of a call's arguments into hashes; pooled, so that Facts
// allocates little.
type argExtractor struct {
	extractor
	hashes []uint64
	h      hasher
	mac    macBuf
	names  []string  // the top-level names, sorted
	spans  []argSpan // each argument's hashes, in order of extraction
	nested bool      // an object argument's members were named
}

var argExtractors = sync.Pool{New: func() any {
	x := &argExtractor{}
	x.budget, x.arg = -1, true
	x.emit = func(_ kind, v []byte) { x.hashes = append(x.hashes, x.h.sum(v, &x.mac)) }
	return x
}}

// maxArgDepth bounds how deep into nested objects an argument's members are named
// ("body.to" at depth 2).
const maxArgDepth = 4

// extractArgs extracts the values of each argument, sorted by name: each top-level argument,
// and each member of an object argument as "NAME.MEMBER" (down to maxArgDepth), so that an HTTP
// call's body.to can be told from its body.subject. An object's values are its keys' and its
// members' values.
// A number argument is looked up whatever its size (extractor.numberValue).
func extractArgs(args map[string]any, h hasher) []argValues {
	x := argExtractors.Get().(*argExtractor)
	x.h = h
	x.spans = x.spans[:0]
	x.nested = false
	for _, name := range sortedKeys(&x.names, args) {
		x.walk(name, args[name], 1)
	}
	all := slices.Clone(x.hashes)
	out := make([]argValues, len(x.spans))
	for i, sp := range x.spans {
		out[i] = argValues{name: sp.name, hashes: all[sp.start:sp.end:sp.end]}
	}
	if x.nested {
		// "body.to" and "body-x" interleave differently by name than by position.
		slices.SortFunc(out, func(a, b argValues) int { return strings.Compare(a.name, b.name) })
	}
	x.hashes = x.hashes[:0]
	if cap(x.buf) <= 1<<16 && cap(x.hashes) <= 1<<14 && cap(x.spans) <= 1<<10 {
		argExtractors.Put(x)
	}
	return out
}

// sortedKeys returns m's keys sorted, in *buf's storage.
func sortedKeys(buf *[]string, m map[string]any) []string {
	names := (*buf)[:0]
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	*buf = names
	return names
}

// argSpan is where one argument's hashes are in argExtractor.hashes.
type argSpan struct {
	name       string
	start, end int
}

// walk extracts one argument: an object member by member (each named), anything else whole.
func (x *argExtractor) walk(name string, v any, depth int) {
	i := len(x.spans)
	x.spans = append(x.spans, argSpan{name: name, start: len(x.hashes)})
	if m, ok := v.(map[string]any); ok && depth < maxArgDepth && len(m) > 0 {
		x.nested = true
		var keys []string
		for _, k := range sortedKeys(&keys, m) {
			x.str(k) // a key is a value of the object, not of its member
			if !memberName(k) {
				// A key that is data (an address used as a key) is not named: a name
				// goes into policy and the audit log, a value must not.
				x.content(m[k])
				continue
			}
			x.walk(name+"."+k, m[k], depth+1)
		}
	} else {
		x.content(v)
	}
	x.spans[i].end = len(x.hashes)
}

// memberName reports whether an object argument's key names a member ("to", "account_id"), so
// that the member is named "PARENT.KEY": 1 to 64 ASCII letters, digits, '_' or '-', starting
// with a letter or '_'. Any other key is data, and the member's values count for its parent
// only.
func memberName(k string) bool {
	if k == "" || len(k) > 64 || !(isLetter(k[0]) || k[0] == '_') {
		return false
	}
	for i := 1; i < len(k); i++ {
		if c := k[i]; !isAlnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// valueBytes is what one value of an observation counts against an index's bound: its hash in
// the observation's list (8 bytes) and its share of the map entry by which it is found. Text
// without values costs nothing, so filler cannot push values out.
const valueBytes = 16

// Index is the values that appeared in one session's untrusted output, by hash, each with the
// newest observation it appeared in. It keeps at most max bytes of values (valueBytes each):
// beyond, the oldest observations are evicted with their values. Not safe for concurrent use:
// Sessions holds it under its lock.
type Index struct {
	max    int
	bytes  int
	obs    []observation // oldest first from head; seq increases by one along it
	head   int
	next   uint64
	values map[uint64]entry
}

type entry struct {
	seq  uint64 // the newest observation the value appeared in
	kind kind
}

type observation struct {
	seq    uint64
	src    Source
	hashes []uint64 // the values whose newest observation this was when it was inserted
}

// NewIndex returns an empty index that keeps at most maxBytes of values (valueBytes each).
func NewIndex(maxBytes int) *Index {
	return &Index{max: maxBytes, values: map[uint64]entry{}}
}

// Bytes is what the values of the observations the index holds count against its bound.
func (x *Index) Bytes() int { return x.bytes }

// maxValues is how many values the index keeps.
func (x *Index) maxValues() int { return x.max / valueBytes }

// Add indexes the values of content (decoded JSON or text) as coming from src, reading at most
// DefaultMaxOutputBytes of its text.
func (x *Index) Add(src Source, content any) {
	x.insert(src, extractOutput(content, DefaultMaxOutputBytes, x.maxValues(), hasher{}))
}

// insert adds one observation's values, then evicts the oldest observations until the index is
// within its bound; it reports whether it evicted any. A value already present moves to the new
// observation; a value twice in one output counts once.
func (x *Index) insert(src Source, b *batch) bool {
	if len(b.hashes) == 0 {
		return false
	}
	o := observation{seq: x.next, src: src, hashes: b.hashes[:0]} // compacted in place
	x.next++
	for i, h := range b.hashes {
		if e, ok := x.values[h]; ok && e.seq == o.seq {
			continue // a value twice in one output keeps its first (most specific) kind
		}
		x.values[h] = entry{seq: o.seq, kind: b.kinds[i]}
		o.hashes = append(o.hashes, h)
	}
	x.obs = append(x.obs, o)
	x.bytes += valueBytes * len(o.hashes)
	evicted := false
	for x.bytes > x.max && x.head < len(x.obs) {
		x.evict()
		evicted = true
	}
	return evicted
}

// evict drops the oldest observation and the values whose newest appearance it was.
func (x *Index) evict() {
	o := &x.obs[x.head]
	for _, h := range o.hashes {
		if e, ok := x.values[h]; ok && e.seq == o.seq {
			delete(x.values, h)
		}
	}
	x.bytes -= valueBytes * len(o.hashes)
	*o = observation{}
	x.head++
	if x.head > len(x.obs)/2 {
		x.obs = slices.Delete(x.obs, 0, x.head)
		x.head = 0
	}
}

// source returns the source of a live observation.
func (x *Index) source(seq uint64) Source {
	return x.obs[x.head+int(seq-x.obs[x.head].seq)].src
}

// Match returns the arguments whose values appeared in the index, sorted by argument.
func (x *Index) Match(args map[string]any) []warden.TaintedArg {
	return x.match(extractArgs(args, hasher{}), nil)
}

// match appends to out each argument with a value in the index, once, with the newest
// observation any of its values appeared in.
func (x *Index) match(args []argValues, out []warden.TaintedArg) []warden.TaintedArg {
	if len(x.values) == 0 {
		return out
	}
	for _, a := range args {
		var best entry
		found := false
		for _, h := range a.hashes {
			if e, ok := x.values[h]; ok && (!found || e.seq > best.seq) {
				best, found = e, true
			}
		}
		if found {
			src := x.source(best.seq)
			out = append(out, warden.TaintedArg{Arg: a.name, Kind: best.kind.String(),
				SourceTool: src.Tool, SourceAction: src.Action, SourceDecision: src.Decision})
		}
	}
	return out
}
