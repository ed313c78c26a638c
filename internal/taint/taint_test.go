package taint

import (
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

// TestIndexEviction: beyond its bound the index evicts the oldest observations with their
// values, a value seen again survives with its newer observation, and the bytes stay bounded.
func TestIndexEviction(t *testing.T) {
	x := NewIndex(1000)
	chunk := func(i int) string {
		return fmt.Sprintf("user%03d@example.com %s", i, strings.Repeat("padding ", 30)) // ~260 bytes
	}
	x.Add(Source{Tool: "t0"}, chunk(0))
	x.Add(Source{Tool: "t1"}, chunk(1))
	x.Add(Source{Tool: "t2"}, chunk(2))
	x.Add(Source{Tool: "t3"}, chunk(0)+" "+chunk(3)) // refreshes user000
	x.Add(Source{Tool: "t4"}, chunk(4))
	if x.Bytes() > 1000 {
		t.Fatalf("bytes = %d, over the bound", x.Bytes())
	}
	match := func(i int) string {
		m := x.Match(map[string]any{"to": fmt.Sprintf("user%03d@example.com", i)})
		if len(m) == 0 {
			return ""
		}
		return m[0].SourceTool
	}
	want := []string{"t3", "", "", "t3", "t4"}
	for i, w := range want {
		if got := match(i); got != w {
			t.Errorf("user%03d: source %q, want %q", i, got, w)
		}
	}
}

// TestIndexLargeObservation: one output larger than the bound is read up to the bound.
func TestIndexLargeObservation(t *testing.T) {
	x := NewIndex(1000)
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "user%03d@example.com ", i)
	}
	x.Add(Source{Tool: "big"}, b.String())
	if x.Bytes() > 1000 || x.Bytes() < 900 {
		t.Fatalf("bytes = %d, want just under 1000", x.Bytes())
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
	out := strings.Repeat("x@evil.io filler words here ", 140) // ~3900 bytes
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
	s := New(Config{SessionBytes: 100, TotalBytes: 100 + 2*sessionOverhead, Idle: time.Hour}, c.now)
	a, b, d := Key{Session: "a"}, Key{Session: "b"}, Key{Session: "d"}
	s.Observe(a, Source{Tool: "t"}, untrusted, strings.Repeat("x", 100))
	s.Observe(b, Source{Tool: "t"}, untrusted, strings.Repeat("x", 100)) // drops a
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
