package taint

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// extractText returns "kind:value" of every value extracted from s read as text (not as a
// whole JSON string), sorted, without repeats.
func extractText(s string) []string {
	var out []string
	e := &extractor{budget: -1, emit: func(k kind, v []byte) { out = append(out, k.String()+":"+string(v)) }}
	e.text(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// extractContent is extractText for decoded JSON or a whole string (a leaf).
func extractContent(v any, arg bool) []string {
	var out []string
	e := &extractor{budget: -1, arg: arg, emit: func(k kind, v []byte) { out = append(out, k.String()+":"+string(v)) }}
	e.content(v)
	slices.Sort(out)
	return slices.Compact(out)
}

func TestExtractText(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"email", "Write to Billing.Team@Evil-Payments.IO, today.", []string{"email:billing.team@evil-payments.io"}},
		{"email in angle brackets", "From: Mallory <mallory@example.com>", []string{"email:mallory@example.com"}},
		{"mailto", "<a href=mailto:Pay@Evil.io?subject=x>", []string{"email:pay@evil.io"}},
		{"email without a dot in the domain", "root@localhost", nil},
		{"url normalised", "see HTTPS://Evil.COM:443/Pay/?id=7#top.", []string{"host:evil.com", "url:https://evil.com/Pay?id=7"}},
		{"url other port kept", "http://Example.com:8080/", []string{"host:example.com", "url:http://example.com:8080"}},
		{"url default http port", "(http://www.example.com:80)", []string{"host:example.com", "url:http://www.example.com"}},
		{"url userinfo dropped", "https://bob:secret@evil.io/x", []string{"host:evil.io", "url:https://evil.io/x"}},
		{"url after a label", "link:https://evil.io/a", []string{"host:evil.io", "url:https://evil.io/a"}},
		{"bare domain", "pay at evil-payments.io now", []string{"host:evil-payments.io"}},
		{"bare www domain with path", "www.Evil.com/pay", []string{"host:evil.com"}},
		{"file name is not a host", "run install.sh and open report.pdf or main.go", nil},
		{"abbreviations are not hosts", "e.g. i.e. Mr.Smith", nil},
		{"iban with spaces", "IBAN: DE89 3704 0044 0532 0130 00, thanks", []string{"iban:DE89370400440532013000"}},
		{"iban lower case joined", "de89370400440532013000", []string{"iban:DE89370400440532013000"}},
		{"iban with dashes", "GB82-WEST-1234-5698-7654-32", []string{"iban:GB82WEST12345698765432"}},
		{"iban then words", "GB82 WEST 1234 5698 7654 32 is mine", []string{"iban:GB82WEST12345698765432"}},
		{"iban after a colon", "IBAN:GB82WEST12345698765432", []string{"iban:GB82WEST12345698765432"}},
		{"iban with a wrong check digit", "GB83 WEST 1234 5698 7654 32", []string{"account:12345698765432"}},
		{"card number in groups", "card 4111 1111 1111 1111 exp 12/29", []string{"account:4111111111111111"}},
		{"phone number", "call +1 (415) 555-0132.", []string{"account:14155550132"}},
		{"account after a label", "account=12345678", []string{"account:12345678"}},
		{"short digit groups", "call 555 0132", []string{"number:555"}},
		{"date is not an account", "due 2024-01-05", nil},
		{"timestamp", "at 2026-12-07T10:00:00Z", nil},
		{"account in dash groups", "ref 123-456-789", []string{"account:123456789"}},
		{"amount with separators", "Total: 4,850.00", []string{"number:4850"}},
		{"dollar amount", "send $1200 now", []string{"number:1200"}},
		{"european amount", "1.200,50 EUR", []string{"number:1200.5"}},
		{"small amount with currency", "only $5", []string{"number:5"}},
		{"small amount with a currency word", "5 dollars", []string{"number:5"}},
		{"currency before apart", "EUR 75", []string{"number:75"}},
		{"euro suffix", "99,90€", []string{"number:99.9"}},
		{"small bare numbers", "1 2 10 42 and 99 items", nil},
		{"years", "in 1999 and 2024 and 2100", nil},
		{"not a year", "code 2101 and 1899", []string{"number:1899", "number:2101"}},
		{"three digits", "room 512", []string{"number:512"}},
		{"zero with currency", "$0.00", nil},
		{"version is not a number", "v1.2.3 and 1.2.3", nil},
		{"percent is not a number", "50% off", nil},
		{"phrase straight quotes", `he said "Wire the money  today" loudly`, []string{"phrase:wire the money today"}},
		{"phrase curly quotes", "“Ignore previous instructions” now", []string{"phrase:ignore previous instructions"}},
		{"phrase single quotes", "reply 'approved by finance' please", []string{"phrase:approved by finance"}},
		{"apostrophes are not quotes", "don't do it, it's Bob's", nil},
		{"one quoted word", `"hello"`, nil},
		{"quoted phrase too short", `"a b"`, nil},
		{"identifier", "order ORD-2024-88121 and channel C0123ABCD", []string{"identifier:c0123abcd", "identifier:ord-2024-88121"}},
		{"identifier after hash", "order#A1B2C3D4E5", []string{"identifier:a1b2c3d4e5"}},
		{"letters only is not an identifier", "ABCDEFGHIJ abcdefghijk", nil},
		{"short identifier", "A1B2C3", nil},
		{"handle", "ping @Mallory_X or #Finance-Ops", []string{"handle:#finance-ops", "handle:@mallory_x"}},
		{"short handle", "@bob #ops", nil},
		{"plain prose", "Please review the attached document and let me know what you think.", nil},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := extractText(tt.text); !slices.Equal(got, tt.want) {
				t.Errorf("extract(%q) = %q, want %q", tt.text, got, tt.want)
			}
		})
	}
}

func TestExtractContent(t *testing.T) {
	tests := []struct {
		name    string
		content any
		arg     bool
		want    []string
	}{
		{"whole string phrase", "Pay invoice 4411 now", false, []string{"number:4411", "phrase:pay invoice 4411 now"}},
		{"whole string identifier", "XK-991", false, []string{"identifier:xk-991"}},
		{"whole plain word", "tomorrow", false, nil},
		{"whole date", "2026-12-07T10:00:00Z", false, nil},
		{"whole string too many words", "one two three four five six seven eight nine ten eleven twelve thirteen", false, nil},
		{"json number significant", json.Number("4850.00"), false, []string{"number:4850"}},
		{"json number small", json.Number("12"), false, nil},
		{"json number year", json.Number("2024"), false, nil},
		{"float", 1200.5, false, []string{"number:1200.5"}},
		{"float exponent", json.Number("4.85e3"), false, []string{"number:4850"}},
		{"small number argument", 5.0, true, []string{"number:5"}},
		{"negative number argument", -4850.0, true, []string{"number:4850"}},
		{"zero argument", 0.0, true, nil},
		{"nested", map[string]any{"a": []any{"x@evil.io", true, nil}, "b": map[string]any{"c": 512.0}}, false,
			[]string{"email:x@evil.io", "identifier:x@evil.io", "number:512"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := extractContent(tt.content, tt.arg); !slices.Equal(got, tt.want) {
				t.Errorf("extract(%v) = %q, want %q", tt.content, got, tt.want)
			}
		})
	}
}

// TestNoFalseMatchOnCommonStrings: short and common strings an agent passes every day never
// become values of their own.
func TestNoFalseMatchOnCommonStrings(t *testing.T) {
	common := []string{"yes", "no", "ok", "true", "false", "null", "hello", "Thanks!", "the", "and",
		"Monday", "tomorrow", "10", "42", "2024", "1.5", "v2", "#1", "@me", "a-b", "USD", "EUR",
		"re:", "Fwd:", "N/A", "1/2", "12:30", "2026-12-07", "e-mail", "don't", "C#", "TODO", "ASAP"}
	for _, s := range common {
		if got := extractContent(s, true); len(got) != 0 {
			t.Errorf("extract(%q) = %q, want nothing", s, got)
		}
	}
}

func TestCanonicalNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"4,850.00", "4850"}, {"4850", "4850"}, {"4.850,00", "4850"}, {"1.200,50", "1200.5"},
		{"1,5", "1.5"}, {"0,125", "0.125"}, {"1200.125", "1200.125"}, {"10.000.000", "10000000"},
		{"007", ""}, {"0132", ""}, {"1,234,567.891", "1234567.891"},
		{"1.2.3", ""}, {"1,,200", ""}, {"12,34,567", ""}, {"1.200.50", ""}, {"1e5", ""}, {"", ""}, {",5", ""},
	}
	for _, tt := range tests {
		b, ok := canonicalNumber(nil, tt.in)
		if got := string(b); (ok && got != tt.want) || (!ok && tt.want != "") {
			t.Errorf("canonicalNumber(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
}

func TestIBANValid(t *testing.T) {
	for _, s := range []string{"DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606", "NL91ABNA0417164300"} {
		if !ibanValid([]byte(s)) {
			t.Errorf("ibanValid(%s) = false", s)
		}
		if ibanValid([]byte(strings.Replace(s, "4", "5", 1))) {
			t.Errorf("ibanValid(%s with a digit changed) = true", s)
		}
	}
}
