package taint

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// realisticMails returns n bytes or more of untrusted mail, as decoded JSON, built the same way
// every time: addresses, IBANs, URLs, amounts, references and ordinary prose.
func realisticMails(n int) []any {
	r := rand.New(rand.NewPCG(1, 2))
	ibans := []string{"DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "FR14 2004 1010 0505 0001 3M02 606", "NL91 ABNA 0417 1643 00"}
	prose := "Thank you for your message. We have reviewed the attached documents and the schedule for next week. " +
		"Please let us know if anything is missing, and we will follow up with the team as soon as possible. "
	var mails []any
	for size := 0; size < n; {
		i := r.IntN(1_000_000)
		body := fmt.Sprintf("Dear customer,\n%sPlease wire %d,%03d.%02d EUR to IBAN %s by Friday. "+
			"Details at https://portal-%d.example-billing.com/invoice/%d?ref=ORD-%d or write to accounts%d@supplier-%d.io. "+
			"Call +1 (415) 555-%04d. Reply \"payment for invoice %d sent\" to confirm.\n%s",
			prose, 1+i%90, i%1000, i%100, ibans[i%len(ibans)], i%97, i, i, i%500, i%89, i%10000, i, prose)
		m := map[string]any{"from": fmt.Sprintf("Billing <billing%d@supplier-%d.io>", i%500, i%89),
			"subject": fmt.Sprintf("Invoice %d overdue", i), "body": body}
		mails = append(mails, m)
		size += len(body) + 60
	}
	return mails
}

// BenchmarkFacts: a session holding 1 MiB of mail, a call of 6 arguments; the values hashed by
// the process's seed (one replica) or by the fleet's key (AES-CBC-MAC, a shared store).
func BenchmarkFacts(b *testing.B) {
	for _, bc := range []struct {
		name string
		key  []byte
	}{{"unkeyed", nil}, {"keyed", []byte("0123456789abcdef")}} {
		b.Run(bc.name, func(b *testing.B) {
			s := New(Config{Key: bc.key}, nil)
			k := Key{Agent: "a", Session: "s"}
			for _, m := range realisticMails(1 << 20) {
				s.Observe(k, Source{Tool: "mail", Action: "read"}, untrusted, m)
			}
			body := strings.Repeat("Hello Anna, the quarterly report is attached; the numbers look fine. ", 8)[:500]
			args := map[string]any{
				"recipient": "anna.kowalski@corp.example",
				"iban":      "PL61 1090 1014 0000 0712 1981 2874",
				"amount":    1234.5,
				"subject":   "Quarterly report",
				"body":      body,
				"url":       "https://intranet.corp.example/reports/q3?view=summary",
			}
			if f := s.Facts(k, send, args); len(f.Tainted) != 0 || f.Evicted || s.Bytes() < 1<<17 {
				b.Fatalf("facts %+v, bytes %d", f, s.Bytes())
			}
			b.ReportAllocs()
			for b.Loop() {
				s.Facts(k, send, args)
			}
		})
	}
}

func BenchmarkObserve100KB(b *testing.B) {
	mails := realisticMails(100 << 10)
	s := New(Config{}, nil)
	k := Key{Agent: "a", Session: "s"}
	b.SetBytes(100 << 10)
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(k, Source{Tool: "mail", Action: "read"}, untrusted, mails)
	}
}

func BenchmarkExtractBody(b *testing.B) {
	body := strings.Repeat("Hello Anna, the quarterly report is attached; the numbers look fine. ", 8)[:500]
	e := &extractor{budget: -1, emit: func(kind, []byte) {}}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		e.leaf(body)
	}
}
