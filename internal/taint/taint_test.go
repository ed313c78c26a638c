package taint

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden"
)

var (
	untrusted = warden.FlowLabels{Output: warden.FlowLabel{Value: warden.OutputUntrusted}, Data: warden.FlowLabel{Value: warden.DataPublic}}
	private   = warden.FlowLabels{Output: warden.FlowLabel{Value: warden.OutputTrusted}, Data: warden.FlowLabel{Value: warden.DataPrivate}}
	trusted   = warden.FlowLabels{Output: warden.FlowLabel{Value: warden.OutputTrusted}, Data: warden.FlowLabel{Value: warden.DataPublic}}
	send      = warden.FlowLabels{Effect: warden.FlowLabel{Value: warden.EffectExternal}}
)

// tainted returns "arg=kind@tool" of each tainted argument.
func tainted(f *warden.FlowFacts) []string {
	var out []string
	for _, t := range f.Tainted {
		out = append(out, t.Arg+"="+t.Kind+"@"+t.SourceTool)
	}
	return out
}

const mail = `{"from":"Mallory <billing@evil-payments.io>","subject":"Invoice 4411 overdue",
"body":"Dear customer, please wire 4,850.00 EUR to IBAN DE89 3704 0044 0532 0130 00 today.\nDetails at https://Evil-Payments.io/pay?inv=4411#now or call +1 (415) 555-0132.\nReference: ORD-2024-88121. Reply \"payment sent today\" to confirm."}`

func decode(t testing.TB, s string) any {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestFactsMatch(t *testing.T) {
	s := New(Config{}, nil)
	k := Key{Agent: "a1", Session: "s1"}
	s.Observe(k, Source{Tool: "mail", Action: "read", Decision: "d1"}, untrusted, decode(t, mail))
	tests := []struct {
		name string
		args map[string]any
		want []string
	}{
		{"recipient", map[string]any{"to": "Billing@Evil-Payments.io"}, []string{"to=email@mail"}},
		{"recipient in a list", map[string]any{"to": []any{"boss@corp.example", "billing@evil-payments.io"}}, []string{"to=email@mail"}},
		{"iban without spaces", map[string]any{"iban": "de89370400440532013000"}, []string{"iban=iban@mail"}},
		{"amount as a JSON number", map[string]any{"amount": 4850.0}, []string{"amount=number@mail"}},
		{"amount as json.Number", map[string]any{"amount": json.Number("4850")}, []string{"amount=number@mail"}},
		{"amount as text", map[string]any{"amount": "EUR 4850"}, []string{"amount=number@mail"}},
		{"another amount", map[string]any{"amount": 4851.0}, nil},
		{"url variant", map[string]any{"url": "https://evil-payments.io:443/pay/?inv=4411"}, []string{"url=url@mail"}},
		{"host of another url", map[string]any{"url": "http://www.evil-payments.io/other"}, []string{"url=host@mail"}},
		{"phone", map[string]any{"phone": "14155550132"}, []string{"phone=account@mail"}},
		{"reference inside a body", map[string]any{"body": "Paid, see ord-2024-88121 for details."}, []string{"body=identifier@mail"}},
		{"quoted phrase as the whole argument", map[string]any{"body": "Payment sent  today"}, []string{"body=phrase@mail"}},
		{"subject as the whole argument", map[string]any{"subject": "Invoice 4411 overdue"}, []string{"subject=number@mail"}},
		{"another subject with its number", map[string]any{"subject": "Re: invoice 4411"}, []string{"subject=number@mail"}},
		{"nested", map[string]any{"opts": map[string]any{"cc": []any{map[string]any{"addr": "billing@evil-payments.io"}}}}, []string{"opts=email@mail", "opts.cc=email@mail"}},
		{"clean arguments", map[string]any{"to": "boss@corp.example", "body": "Please review the attached document.", "n": 3.0, "ok": true}, nil},
		{"plain words never match", map[string]any{"a": "customer", "b": "please", "c": "today", "d": "Dear"}, nil},
		{"sorted, each once", map[string]any{"z": "billing@evil-payments.io evil-payments.io", "a": 4850.0, "m": "clean"}, []string{"a=number@mail", "z=email@mail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := s.Facts(k, send, tt.args)
			if !f.UntrustedRead || f.Evicted || f.PrivateRead {
				t.Errorf("facts = %+v, want untrusted read only", f)
			}
			if got := tainted(f); !slices.Equal(got, tt.want) {
				t.Errorf("tainted = %q, want %q", got, tt.want)
			}
		})
	}
	f := s.Facts(k, send, map[string]any{"to": "billing@evil-payments.io"})
	if want := []string{"mail", "mail:read"}; !slices.Equal(f.UntrustedSources, want) {
		t.Errorf("sources = %q, want %q", f.UntrustedSources, want)
	}
	if f.Tainted[0].SourceAction != "read" || f.Tainted[0].SourceDecision != "d1" || f.Labels != send {
		t.Errorf("facts = %+v", f)
	}
}

func TestObserveLabels(t *testing.T) {
	s := New(Config{}, nil)
	k := Key{Agent: "a", Session: "s"}
	args := map[string]any{"to": "billing@evil-payments.io"}
	s.Observe(k, Source{Tool: "crm"}, trusted, "billing@evil-payments.io")
	if f := s.Facts(k, send, args); f.UntrustedRead || f.PrivateRead || len(f.Tainted) != 0 || s.Len() != 0 {
		t.Fatalf("trusted public output recorded: %+v", f)
	}
	s.Observe(k, Source{Tool: "crm"}, private, "billing@evil-payments.io")
	if f := s.Facts(k, send, args); f.UntrustedRead || !f.PrivateRead || len(f.Tainted) != 0 {
		t.Fatalf("private trusted output: %+v, want private read, nothing indexed", f)
	}
	s.Observe(k, Source{Tool: "web"}, untrusted, "billing@evil-payments.io")
	if f := s.Facts(k, send, args); !f.UntrustedRead || !f.PrivateRead || len(f.Tainted) != 1 {
		t.Fatalf("after untrusted output: %+v", f)
	}
	if f := s.Facts(Key{Agent: "a", Session: "other"}, send, args); f.UntrustedRead || len(f.Tainted) != 0 {
		t.Fatalf("another session sees it: %+v", f)
	}
}

func TestNewestSource(t *testing.T) {
	s := New(Config{}, nil)
	k := Key{Agent: "a", Session: "s"}
	s.Observe(k, Source{Tool: "mail"}, untrusted, "pay billing@evil-payments.io")
	s.Observe(k, Source{Tool: "web"}, untrusted, "contact: Billing@evil-payments.io")
	f := s.Facts(k, send, map[string]any{"to": "billing@evil-payments.io"})
	if got := tainted(f); !slices.Equal(got, []string{"to=email@web"}) {
		t.Errorf("tainted = %q, want the newest source", got)
	}
}

// values returns text of n values (identifiers) numbered from i, in filler that holds none.
func values(i, n int) string {
	var b strings.Builder
	for j := range n {
		fmt.Fprintf(&b, "ref%03dx%03d and some padding words ", i, j)
	}
	return b.String()
}

// TestIndexEviction: beyond its bound (valueBytes a value) the index evicts the oldest
// observations with their values, a value seen again survives with its newer observation, and
// the bytes stay bounded.
func TestIndexEviction(t *testing.T) {
	x := NewIndex(1400)
	chunk := func(i int) string {
		return fmt.Sprintf("user%03d@example.com %s", i, values(i, 20)) // 21 values: 336 bytes
	}
	x.Add(Source{Tool: "t0"}, chunk(0))
	x.Add(Source{Tool: "t1"}, chunk(1))
	x.Add(Source{Tool: "t2"}, chunk(2))
	x.Add(Source{Tool: "t3"}, chunk(0)+" "+chunk(3)) // refreshes user000
	x.Add(Source{Tool: "t4"}, chunk(4))
	if x.Bytes() > 1400 {
		t.Fatalf("bytes = %d, over the bound", x.Bytes())
	}
	match := func(i int) string {
		m := x.Match(map[string]any{"to": fmt.Sprintf("user%03d@example.com", i)})
		if len(m) == 0 {
			return ""
		}
		return m[0].SourceTool
	}
	want := []string{"t3", "", "t2", "t3", "t4"}
	for i, w := range want {
		if got := match(i); got != w {
			t.Errorf("user%03d: source %q, want %q", i, got, w)
		}
	}
}

// TestIndexLargeObservation: of one output with more values than the bound, the first are kept.
func TestIndexLargeObservation(t *testing.T) {
	x := NewIndex(1000)
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "user%03d@example.com ", i)
	}
	x.Add(Source{Tool: "big"}, b.String())
	if x.Bytes() != 1000/valueBytes*valueBytes {
		t.Fatalf("bytes = %d, want %d", x.Bytes(), 1000/valueBytes*valueBytes)
	}
	if m := x.Match(map[string]any{"to": "user000@example.com"}); len(m) != 1 {
		t.Errorf("the first value is not indexed")
	}
	if m := x.Match(map[string]any{"to": "user099@example.com"}); len(m) != 0 {
		t.Errorf("a value beyond the bound is indexed")
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// TestSessionsTotalBound: beyond TotalBytes the least recently used session is dropped and
// leaves a tombstone: its facts say Evicted and taint every argument.
func TestSessionsTotalBound(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	s := New(Config{SessionBytes: 4000, TotalBytes: 3 * (4000 + sessionOverhead), Idle: time.Hour}, c.now)
	out := "x@evil.io " + values(0, 230) // 231 values: 3696 bytes
	key := func(i int) Key { return Key{Agent: "a", Session: fmt.Sprint(i)} }
	for i := range 3 {
		s.Observe(key(i), Source{Tool: "mail"}, untrusted, out)
		c.t = c.t.Add(time.Second)
	}
	s.Facts(key(0), send, nil) // 0 is now more recently used than 1
	s.Observe(key(3), Source{Tool: "mail"}, untrusted, out)
	if s.Len() != 3 || s.Bytes() > 3*(4000+sessionOverhead) {
		t.Fatalf("len %d bytes %d: over the bound", s.Len(), s.Bytes())
	}
	args := map[string]any{"to": "boss@corp.example", "amount": 12.0}
	f := s.Facts(key(1), send, args)
	if !f.Evicted || !f.UntrustedRead || !slices.Equal(tainted(f), []string{"amount=evicted@", "to=evicted@"}) {
		t.Fatalf("dropped session's facts = %+v, want evicted, every argument tainted", f)
	}
	if f := s.Facts(key(0), send, args); f.Evicted || len(f.Tainted) != 0 {
		t.Fatalf("recently used session dropped: %+v", f)
	}
	// Read again, the dropped session is new but still evicted: what it read before is unknown.
	s.Observe(key(1), Source{Tool: "web"}, untrusted, "pay@evil.io")
	f = s.Facts(key(1), send, map[string]any{"to": "pay@evil.io", "body": "hello"})
	if !f.Evicted || !slices.Equal(tainted(f), []string{"body=evicted@", "to=email@web"}) {
		t.Fatalf("dropped session read again: %+v", f)
	}
	// End leaves no tombstone, and forgets one: the session really ended.
	s.End(key(1))
	if f := s.Facts(key(1), send, args); f.Evicted || f.UntrustedRead || len(f.Tainted) != 0 {
		t.Fatalf("ended session: %+v, want nothing", f)
	}
	if f := s.Facts(key(2), send, args); !f.Evicted {
		t.Fatalf("session 2 not dropped when 1 came back: %+v", f)
	}
	s.End(key(2))
	if f := s.Facts(key(2), send, args); f.Evicted || f.UntrustedRead {
		t.Fatalf("ended dropped session: %+v, want nothing", f)
	}
}

// TestExpire: idle sessions and tombstones go without a tombstone.
func TestExpire(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	s := New(Config{SessionBytes: 160, TotalBytes: 160 + 2*sessionOverhead, Idle: time.Hour}, c.now)
	a, b, d := Key{Session: "a"}, Key{Session: "b"}, Key{Session: "d"}
	s.Observe(a, Source{Tool: "t"}, untrusted, values(0, 6))
	s.Observe(b, Source{Tool: "t"}, untrusted, values(0, 6)) // drops a
	if f := s.Facts(a, send, nil); !f.Evicted {
		t.Fatalf("a not dropped: %+v", f)
	}
	c.t = c.t.Add(30 * time.Minute)
	s.Observe(d, Source{Tool: "t"}, private, "x")
	c.t = c.t.Add(31 * time.Minute)
	s.Expire()
	if s.Len() != 1 {
		t.Fatalf("len = %d, want 1 (d)", s.Len())
	}
	if f := s.Facts(a, send, nil); f.Evicted || f.UntrustedRead {
		t.Fatalf("tombstone outlived Idle: %+v", f)
	}
	if f := s.Facts(b, send, nil); f.Evicted || f.UntrustedRead {
		t.Fatalf("idle session kept or left a tombstone: %+v", f)
	}
	if f := s.Facts(d, send, nil); !f.PrivateRead {
		t.Fatalf("live session expired: %+v", f)
	}
}

// TestConcurrent runs observers and deciders on shared and separate sessions under -race.
func TestConcurrent(t *testing.T) {
	s := New(Config{SessionBytes: 20_000, TotalBytes: 200_000}, nil)
	m := decode(t, mail)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := Key{Agent: "a", Session: fmt.Sprint((g + i) % 12)}
				if i%3 == 0 {
					s.Observe(k, Source{Tool: "mail", Action: "read"}, untrusted, m)
				}
				f := s.Facts(k, send, map[string]any{"to": "billing@evil-payments.io", "amount": 4850.0})
				if f.UntrustedRead && len(f.Tainted) != 2 {
					t.Errorf("facts = %+v", f)
					return
				}
				if i%50 == 0 {
					s.End(k)
					s.Expire()
				}
			}
		}()
	}
	wg.Wait()
	if s.Bytes() > 200_000 {
		t.Errorf("bytes = %d, over the total", s.Bytes())
	}
}

// TestCutOutputFailsClosed: an output whose values were not all indexed — cut at
// MaxOutputBytes, more values than the session keeps, a Partial, or older observations evicted
// to stay within SessionBytes — makes its session evicted for the rest of its life; filler
// without values costs nothing and cuts nothing.
func TestCutOutputFailsClosed(t *testing.T) {
	const iban = "pay DE89 3704 0044 0532 0130 00 today"
	args := map[string]any{"iban": "DE89370400440532013000", "body": "hello"}
	tests := []struct {
		name    string
		cfg     Config
		outputs []any
		want    []string
		evicted bool
	}{
		{"filler within the output bound", Config{SessionBytes: 64, MaxOutputBytes: 1 << 21},
			[]any{strings.Repeat("lorem ipsum dolor ", 1<<16) + iban}, []string{"iban=iban@web"}, false},
		{"filler beyond the output bound", Config{MaxOutputBytes: 1 << 16},
			[]any{strings.Repeat(" ", 1<<16) + iban}, []string{"body=evicted@", "iban=evicted@"}, true},
		{"number beyond the output bound", Config{MaxOutputBytes: 12},
			[]any{[]any{"0123456789", 4850.0}}, []string{"body=evicted@", "iban=evicted@"}, true},
		{"more values than the session keeps", Config{SessionBytes: 4 * valueBytes},
			[]any{values(0, 4) + iban}, []string{"body=evicted@", "iban=evicted@"}, true},
		{"partial", Config{}, []any{Partial{Content: map[string]any{"body": iban}}}, []string{"body=evicted@", "iban=iban@web"}, true},
		{"older observations evicted", Config{SessionBytes: 8 * valueBytes},
			[]any{iban, values(0, 4), values(1, 4)}, []string{"body=evicted@", "iban=evicted@"}, true},
		{"within every bound", Config{SessionBytes: 8 * valueBytes},
			[]any{iban, values(0, 2)}, []string{"iban=iban@web"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.cfg, nil)
			k := Key{Agent: "a", Session: "s"}
			for _, out := range tt.outputs {
				s.Observe(k, Source{Tool: "web"}, untrusted, out)
			}
			// Clean output read later does not clear it.
			s.Observe(k, Source{Tool: "web"}, untrusted, "ok")
			f := s.Facts(k, send, args)
			if f.Evicted != tt.evicted || !f.UntrustedRead || !slices.Equal(tainted(f), tt.want) {
				t.Errorf("facts = %+v, tainted %q; want evicted %v, tainted %q", f, tainted(f), tt.evicted, tt.want)
			}
		})
	}
}

// TestMapKeys: a key of an object is a value: in output, like any string; in an argument, of
// the object argument and its parents.
func TestMapKeys(t *testing.T) {
	s := New(Config{}, nil)
	k := Key{Agent: "a", Session: "s"}
	s.Observe(k, Source{Tool: "web"}, untrusted, map[string]any{"DE89370400440532013000": "pay", "list": []any{map[string]any{"evil@x.io": true}}})
	tests := []struct {
		name string
		args map[string]any
		want []string
	}{
		{"output key", map[string]any{"iban": "DE89 3704 0044 0532 0130 00"}, []string{"iban=iban@web"}},
		{"argument key", map[string]any{"recipients": map[string]any{"evil@x.io": map[string]any{}}}, []string{"recipients=email@web"}},
		{"nested argument key", map[string]any{"body": map[string]any{"to": map[string]any{"evil@x.io": 1.0}, "subject": "hi"}},
			[]string{"body=email@web", "body.to=email@web"}},
		{"key below the named depth", map[string]any{"a": map[string]any{"b": map[string]any{"c": map[string]any{"d": map[string]any{"evil@x.io": 1.0}}}}},
			[]string{"a=email@web", "a.b=email@web", "a.b.c=email@web", "a.b.c.d=email@web"}},
		{"clean keys", map[string]any{"recipients": map[string]any{"boss@corp.example": map[string]any{}}}, nil},
		{"a key that is data names no member", map[string]any{"recipients": map[string]any{"evil@x.io": map[string]any{"cc": "evil@x.io"}}},
			[]string{"recipients=email@web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tainted(s.Facts(k, send, tt.args)); !slices.Equal(got, tt.want) {
				t.Errorf("tainted = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestKeyedHash: the keyed hash is AES-CBC-MAC over the length block and the zero-padded
// value (checked against crypto/cipher's CBC mode), the same for the same key, and differs with
// the key and with trailing zero bytes.
func TestKeyedHash(t *testing.T) {
	key16 := []byte("0123456789abcdef")
	long := []byte("a fleet key longer than sixteen bytes")
	d := sha256.Sum256(long)
	for _, tc := range []struct {
		key, aesKey []byte
	}{{key16, key16}, {long, d[:16]}} {
		h := newHasher(tc.key)
		var buf macBuf
		for _, v := range []string{"", "a", "billing@evil-payments.io", strings.Repeat("x", 16), strings.Repeat("y", 33)} {
			in := make([]byte, 16, 16+len(v)+16)
			binary.BigEndian.PutUint64(in[8:], uint64(len(v)))
			in = append(in, v...)
			in = append(in, make([]byte, (16-len(v)%16)%16)...)
			block, err := aes.NewCipher(tc.aesKey)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]byte, len(in))
			cipher.NewCBCEncrypter(block, make([]byte, 16)).CryptBlocks(out, in)
			want := binary.LittleEndian.Uint64(out[len(out)-16:])
			if got := h.sum([]byte(v), &buf); got != want {
				t.Errorf("key %d bytes, %q: %x, want %x", len(tc.key), v, got, want)
			}
		}
	}
	var buf macBuf
	a, b := newHasher(key16), newHasher(long)
	if a.sum([]byte("a"), &buf) == a.sum([]byte("a\x00"), &buf) || a.sum([]byte("a"), &buf) == b.sum([]byte("a"), &buf) ||
		a.sum([]byte("a"), &buf) != newHasher(key16).sum([]byte("a"), &buf) {
		t.Error("the keyed hash is not prefix-free, keyed or deterministic")
	}
}

// TestFairEviction: an agent churning sessions is the one whose sessions are dropped while it
// holds the most bytes, and whose tombstones are forgotten: another agent's lone session and
// its dropped session's tombstone stay.
func TestFairEviction(t *testing.T) {
	defer func(total, agent int) { maxTombstones, maxAgentTombstones = total, agent }(maxTombstones, maxAgentTombstones)
	maxTombstones, maxAgentTombstones = 8, 5
	per := int64(sessionOverhead + 10*valueBytes + len("mail") + len("mail:"))
	s := New(Config{SessionBytes: 10 * valueBytes, TotalBytes: 4 * per}, nil)
	out := values(0, 10)
	b1, b2 := Key{Agent: "B", Session: "1"}, Key{Agent: "B", Session: "2"}
	for _, k := range []Key{b1, b2, {Agent: "B", Session: "3"}, {Agent: "B", Session: "4"}, {Agent: "B", Session: "5"}} {
		s.Observe(k, Source{Tool: "mail"}, untrusted, out) // B drops its own b1
	}
	s.End(Key{Agent: "B", Session: "3"})
	s.End(Key{Agent: "B", Session: "4"})
	s.End(Key{Agent: "B", Session: "5"})
	for i := range 100 {
		s.Observe(Key{Agent: "A", Session: fmt.Sprint(i)}, Source{Tool: "mail"}, untrusted, out)
	}
	args := map[string]any{"ref": "ref000x001"}
	if f := s.Facts(b1, send, args); !f.Evicted {
		t.Errorf("B's tombstone forgotten: %+v", f)
	}
	if f := s.Facts(b2, send, args); f.Evicted || !slices.Equal(tainted(f), []string{"ref=identifier@mail"}) {
		t.Errorf("B's lone session dropped: %+v", f)
	}
	if n := s.agents["A"].tombs.Len(); n > maxAgentTombstones || len(s.tombs) > maxTombstones {
		t.Errorf("A holds %d tombstones, %d in all", n, len(s.tombs))
	}
	if s.Bytes() > 4*per {
		t.Errorf("bytes %d over the total", s.Bytes())
	}
	// Another agent's churn fills the tombstones: the agents with the most lose their oldest.
	for i := range 20 {
		s.Observe(Key{Agent: "D", Session: fmt.Sprint(i)}, Source{Tool: "mail"}, untrusted, out)
	}
	if f := s.Facts(b1, send, args); !f.Evicted || len(s.tombs) != maxTombstones {
		t.Errorf("B's tombstone forgotten, or %d tombstones: %+v", len(s.tombs), f)
	}
}
