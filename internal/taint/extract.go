package taint

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// kind is what kind of value was found; its name is what warden.TaintedArg.Kind records.
type kind uint8

const (
	kindEmail kind = iota + 1
	kindURL
	kindHost
	kindIBAN
	kindAccount
	kindNumber
	kindPhrase
	kindIdentifier
	kindHandle
)

var kindNames = [...]string{
	kindEmail:      "email",
	kindURL:        "url",
	kindHost:       "host",
	kindIBAN:       "iban",
	kindAccount:    "account",
	kindNumber:     "number",
	kindPhrase:     "phrase",
	kindIdentifier: "identifier",
	kindHandle:     "handle",
}

// kindEvicted is the kind of every argument of a session whose state was dropped.
const kindEvicted = "evicted"

func (k kind) String() string { return kindNames[k] }

// Bounds of the extractor (docs/flow.md, "The value index").
const (
	minWhole      = 6 // a whole string shorter than this is not a value by itself
	minPhrase     = 8 // a phrase is 8 to 200 bytes of 2 to 12 words
	maxPhrase     = 200
	maxPhraseWord = 12
	minIdentifier = 8 // identifiers mix letters and digits
	minHandle     = 4 // characters after @ or #
	minAccount    = 8 // digits of an account, card or phone number
	maxAccount    = 40
	minNumber     = 3 // significant digits of a bare number
)

// extractor finds the significant values in decoded JSON or text and hands each, normalised,
// to emit. The value passed to emit is only valid during the call. The same extractor reads
// observed output and the arguments of a call, so that a value normalises the same both ways.
type extractor struct {
	buf  []byte
	emit func(k kind, v []byte)
	// budget is how many more bytes of text content may read (negative: no bound); arg:
	// content is a call's argument (see numberValue); cut: content left something unread for
	// want of budget.
	budget int
	arg    bool
	cut    bool
}

// numberBytes is what a number in decoded JSON counts against the budget.
const numberBytes = 8

// content walks decoded JSON: every string is a leaf (leaf), and so is every key of an object;
// every number a number. What is beyond the budget is not read, and the extractor is cut.
func (e *extractor) content(v any) {
	switch v := v.(type) {
	case string:
		e.str(v)
	case json.Number:
		if e.spend() {
			e.jsonNumber(string(v))
		}
	case float64:
		if e.spend() {
			e.float(v)
		}
	case int:
		if e.spend() {
			e.integer(int64(v))
		}
	case int64:
		if e.spend() {
			e.integer(v)
		}
	case []any:
		for _, x := range v {
			e.content(x)
		}
	case map[string]any:
		for k, x := range v {
			e.str(k) // a key is text like any string: {"DE89…": "pay"}
			e.content(x)
		}
	}
}

// str extracts from one string of content, within the budget.
func (e *extractor) str(v string) {
	if e.budget >= 0 && len(v) > e.budget {
		v = v[:e.budget]
		if i := strings.LastIndexAny(v, " \n\t\r"); i >= 0 {
			v = v[:i] // not a value cut in two
		}
		e.budget, e.cut = 0, true
	} else if e.budget >= 0 {
		e.budget -= len(v)
	}
	e.leaf(v)
}

// spend takes a number's bytes from the budget, if there are enough.
func (e *extractor) spend() bool {
	if e.budget < 0 {
		return true
	}
	if e.budget < numberBytes {
		e.budget, e.cut = 0, true
		return false
	}
	e.budget -= numberBytes
	return true
}

// leaf extracts from one string: the whole string, normalised, when it is a value by itself
// (a JSON field, like a quoted phrase, delimits one), and the values in its text.
func (e *extractor) leaf(s string) {
	e.text(s)
	e.whole(s)
}

// whole emits s trimmed, lower-cased and with whitespace collapsed: as a phrase when it has
// 2 to 12 words in 8 to 200 bytes, as an identifier when it is one token of 6 or more bytes
// with a letter that is neither a plain word nor a timestamp (a token without letters is a
// number or an account, which text finds).
func (e *extractor) whole(s string) {
	s = strings.TrimSpace(s)
	if len(s) < minWhole || len(s) > 2*maxPhrase || fields(s) > maxPhraseWord {
		return
	}
	b := e.collapse(e.buf[:0], s)
	e.buf = b
	words := 1 + countByte(b, ' ')
	switch {
	case words == 1 && hasLetter(s) && !plainWord(trimPunct(s)) && !dateLike(trimPunct(s)):
		e.emit(kindIdentifier, b)
	case words >= 2 && words <= maxPhraseWord && len(b) >= minPhrase && len(b) <= maxPhrase:
		e.emit(kindPhrase, b)
	}
}

// dateLike reports whether w is a date or timestamp written YYYY-MM-DD[T…]: common to many
// outputs and arguments alike, so not a value.
func dateLike(w string) bool {
	return len(w) >= 10 && isDate(w[:10]) && (len(w) == 10 || w[10] == 'T' || w[10] == 't')
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if isLetter(s[i]) || s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// fields counts the words of s, up to one more than a phrase may have.
func fields(s string) int {
	n, in := 0, false
	for i := 0; i < len(s) && n <= maxPhraseWord; i++ {
		sp := isSpace(s[i])
		if !sp && !in {
			n++
		}
		in = !sp
	}
	return n
}

// collapse appends s lower-cased with each run of whitespace made one space.
func (e *extractor) collapse(b []byte, s string) []byte {
	space := false
	for i := 0; i < len(s); {
		c := s[i]
		if isSpace(c) {
			space, i = true, i+1
			continue
		}
		if space {
			b, space = append(b, ' '), false
		}
		if c < utf8.RuneSelf {
			b, i = append(b, lowerASCII(c)), i+1
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if l := unicode.ToLower(r); r != utf8.RuneError && l != r && utf8.RuneLen(l) == n {
			b = utf8.AppendRune(b, l)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

// text scans s word by word (words are separated by ASCII whitespace), and separately for
// quoted phrases.
func (e *extractor) text(s string) {
	prev := ""
	for i := 0; i < len(s); {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		a, prose := i, true
		for ; i < len(s) && !isSpace(s[i]); i++ {
			prose = prose && (prosy[s[i]] || (s[i] == '.' && (i+1 == len(s) || isSpace(s[i+1]))))
		}
		if a == i {
			break
		}
		if prose { // the common case: a word of letters, perhaps with a comma or full stop
			prev = s[a:i]
			continue
		}
		w := trimPunct(s[a:i])
		i = e.word(s, w, i, prev)
		prev = w
	}
	e.phrases(s)
}

// prosy are the bytes of a word that can hold no value: letters and the punctuation of prose
// (a dot can end such a word, but inside it may make a host name).
var prosy = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range ",;!?()\"'" {
		t[c] = true
	}
	return t
}()

// nextWord returns the bounds of the first word of s at or after i.
func nextWord(s string, i int) (int, int) {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	a := i
	for i < len(s) && !isSpace(s[i]) {
		i++
	}
	return a, i
}

// word extracts from one word w (its surrounding punctuation trimmed) that ends at end in s
// and follows the word prev; it may read on into the following words (an IBAN or account
// number written in groups, a currency after an amount) and returns where scanning continues.
func (e *extractor) word(s, w string, end int, prev string) int {
	if w == "" || (len(w) < 2 && !isDigit(w[0])) || plainWord(w) || dateLike(w) {
		return end
	}
	if strings.Contains(w, "://") {
		e.url(w)
		return end
	}
	if len(w) > 7 && strings.EqualFold(w[:7], "mailto:") {
		e.email(w[7:], 0)
		return end
	}
	if w[0] == '@' || w[0] == '#' {
		e.handle(w)
		return end
	}
	if at := strings.IndexByte(w, '@'); at > 0 {
		if e.email(w, at) {
			return end
		}
	}
	if ibanStart(w) {
		if n, ok := e.iban(s, w, end); ok {
			return n
		}
	}
	if digitsAndDashes(strings.TrimPrefix(w, "+")) {
		if n, ok := e.account(s, w, end); ok {
			return n
		}
	}
	if e.amount(w, prev, s, end) {
		return end
	}
	if e.single(w) {
		return end
	}
	// A word none of the rules took whole may join values with other punctuation
	// ("IBAN:DE89…", "order#A1B2C3D4", "account=12345678"): its parts are read one by one.
	for w != "" {
		i := strings.IndexFunc(w, isJoiner)
		if i < 0 {
			e.part(w)
			break
		}
		e.part(w[:i])
		w = w[i+1:]
	}
	return end
}

// part reads one part of a word split at joining punctuation, without reading on.
func (e *extractor) part(w string) {
	w = trimPunct(w)
	if len(w) < 2 || dateLike(w) {
		return
	}
	if at := strings.IndexByte(w, '@'); at > 0 && e.email(w, at) {
		return
	}
	if ibanStart(w) && e.ibanValue(w) {
		return
	}
	if digitsAndDashes(w) {
		if d := e.digits(w); len(d) >= minAccount && !isDate(w) {
			e.emit(kindAccount, d)
			return
		}
	}
	if e.amount(w, "", "", 0) {
		return
	}
	e.single(w)
}

// single extracts a word that is a value alone: a bare domain (host) or an identifier.
func (e *extractor) single(w string) bool {
	if h := bareHost(w); h != "" {
		e.host(h)
		return true
	}
	if len(w) >= minIdentifier && identifier(w) {
		e.buf = appendLower(e.buf[:0], w)
		e.emit(kindIdentifier, e.buf)
		return true
	}
	return false
}

func isJoiner(r rune) bool {
	switch r {
	case ':', '=', '#', ';', ',', '|', '(', ')', '[', ']', '{', '}', '<', '>', '"', '\'', '`', '*', '!', '?', '/', '\\', '&':
		return true
	}
	return false
}

// url emits the URL in w, normalised (scheme and host lower-cased; default port, userinfo,
// fragment, and trailing slashes and punctuation dropped; path and query kept), and its host.
func (e *extractor) url(w string) {
	p := strings.Index(w, "://")
	a := p
	for a > 0 && isLetter(w[a-1]) {
		a--
	}
	if p-a < 2 || p-a > 10 {
		return
	}
	scheme, rest := w[a:p], w[p+3:]
	if i := strings.IndexByte(rest, '#'); i >= 0 {
		rest = rest[:i]
	}
	for t := ""; t != rest; {
		t, rest = rest, trimPunct(strings.TrimRight(rest, "/"))
	}
	auth, tail := rest, ""
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		auth, tail = rest[:i], rest[i:]
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:]
	}
	host, port := auth, ""
	if i := strings.LastIndexByte(auth, ':'); i >= 0 && !strings.Contains(auth[i:], "]") {
		host, port = auth[:i], auth[i+1:]
	}
	host = strings.TrimRight(host, ".")
	if !urlHost(host) || !allDigits(port) {
		return
	}
	path, query := tail, ""
	if i := strings.IndexByte(tail, '?'); i >= 0 {
		path, query = tail[:i], tail[i+1:]
	}
	path = strings.TrimRight(path, "/")
	b := appendLower(e.buf[:0], scheme)
	b = append(b, "://"...)
	b = appendLower(b, host)
	if port != "" && !defaultPort(b[:len(scheme)], port) {
		b = append(b, ':')
		b = append(b, port...)
	}
	b = append(b, path...)
	if query != "" {
		b = append(b, '?')
		b = append(b, query...)
	}
	e.buf = b
	e.emit(kindURL, b)
	if validHost(host) {
		e.host(host)
	}
}

// urlHost reports whether h is a URL's host: a name of letters, digits, dots, dashes and
// underscores, or an IPv6 address in brackets.
func urlHost(h string) bool {
	ip6 := len(h) > 2 && h[0] == '[' && h[len(h)-1] == ']'
	if ip6 {
		h = h[1 : len(h)-1]
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(ip6 && (isDigit(c) || (c|0x20) >= 'a' && (c|0x20) <= 'f' || c == ':' || c == '.')) &&
			!(!ip6 && (isAlnum(c) || c == '.' || c == '-' || c == '_')) {
			return false
		}
	}
	return h != "" && (!ip6 || strings.Contains(h, ":"))
}

func defaultPort(scheme []byte, port string) bool {
	switch string(scheme) {
	case "http", "ws":
		return port == "80"
	case "https", "wss":
		return port == "443"
	}
	return port == ""
}

// host emits a host name lower-cased, without a leading "www." and trailing dots.
func (e *extractor) host(h string) {
	h = strings.TrimRight(h, ".")
	b := appendLower(e.buf[:0], h)
	for len(b) > 4 && string(b[:4]) == "www." && countByte(b[4:], '.') > 0 {
		b = b[4:]
	}
	e.buf = b
	e.emit(kindHost, b)
}

// email emits the address around the @ at w[at], lower-cased, when its domain has a dot and a
// top-level domain of letters.
func (e *extractor) email(w string, at int) bool {
	if at == 0 {
		at = strings.IndexByte(w, '@')
		if at <= 0 {
			return false
		}
	}
	a := at
	for a > 0 && isLocalChar(w[a-1]) {
		a--
	}
	for a < at && !isAlnum(w[a]) {
		a++
	}
	z := at + 1
	for z < len(w) && isHostChar(w[z]) {
		z++
	}
	domain := strings.TrimRight(w[at+1:z], ".-")
	if a == at || !validHost(domain) || !letterTLD(domain) {
		return false
	}
	b := appendLower(e.buf[:0], w[a:at+1])
	b = appendLower(b, domain)
	e.buf = b
	e.emit(kindEmail, b)
	return true
}

// handle emits "@name" or "#name" lower-cased, with 4 or more name characters.
func (e *extractor) handle(w string) {
	n := 1
	for n < len(w) && (isAlnum(w[n]) || w[n] == '_' || w[n] == '-' || (w[0] == '@' && w[n] == '.')) {
		n++
	}
	name := strings.TrimRight(w[1:n], "._-")
	if len(name) < minHandle {
		return
	}
	b := append(e.buf[:0], w[0])
	b = appendLower(b, name)
	e.buf = b
	e.emit(kindHandle, b)
}

// iban emits an IBAN that starts with w and may continue in groups in the following words of
// s: the longest run of groups that passes the ISO 13616 check (mod 97), upper-cased and
// without separators.
func (e *extractor) iban(s, w string, end int) (int, bool) {
	b := e.buf[:0]
	var ends [maxIBANGroups]int // after each word: the length of b and where that word ends in s
	var stops [maxIBANGroups]int
	n := 0
	add := func(g string) bool {
		for i := 0; i < len(g); i++ {
			switch c := g[i]; {
			case isAlnum(c):
				b = append(b, upperASCII(c))
			case c == '-' && i > 0 && i < len(g)-1:
			default:
				return false
			}
		}
		return len(b) <= maxIBAN
	}
	if !add(w) {
		e.buf = b
		return end, false
	}
	ends[0], stops[0], n = len(b), end, 1
	for i := end; n < maxIBANGroups; n++ {
		a, z := nextWord(s, i)
		g := trimPunct(s[a:z])
		if g == "" || len(g) > 4 || !add(g) {
			break
		}
		ends[n], stops[n], i = len(b), z, z
		if len(g) != z-a {
			n++
			break
		}
	}
	e.buf = b
	for n > 0 {
		n--
		if l := ends[n]; l >= minIBAN && ibanValid(b[:l]) {
			e.emit(kindIBAN, b[:l])
			return stops[n], true
		}
	}
	return end, false
}

// ibanValue emits w as an IBAN when it is one, without reading on.
func (e *extractor) ibanValue(w string) bool {
	_, ok := e.iban("", w, 0)
	return ok
}

const (
	minIBAN       = 15
	maxIBAN       = 34
	maxIBANGroups = 10
)

func ibanStart(w string) bool {
	return len(w) >= 4 && isLetter(w[0]) && isLetter(w[1]) && isDigit(w[2]) && isDigit(w[3])
}

// ibanValid checks the ISO 7064 mod 97-10 check digits of an upper-cased IBAN.
func ibanValid(b []byte) bool {
	if !ibanStart(string(b)) {
		return false
	}
	r := 0
	for i := range len(b) {
		c := b[(i+4)%len(b)]
		switch {
		case isDigit(c):
			r = (r*10 + int(c-'0')) % 97
		case c >= 'A' && c <= 'Z':
			r = (r*100 + int(c-'A') + 10) % 97
		default:
			return false
		}
	}
	return r == 1
}

// account emits the digits of an account, card or phone number written in groups separated by
// single spaces or dashes from w on ("4111 1111 1111 1111", "+1 (415) 555-0132"), 8 to 40 digits.
// A date written 2024-01-05 is not one.
func (e *extractor) account(s, w string, end int) (int, bool) {
	if isDate(w) {
		return end, false
	}
	b := e.digits(w)
	stop := end
	for i := end; !endsClause(s[:stop]); {
		a, z := nextWord(s, i)
		if a == z {
			break
		}
		g := strings.TrimLeft(strings.TrimRight(s[a:z], ".,;:)"), "(")
		if g == "" || !digitsAndDashes(g) || len(b)+len(g) > maxAccount {
			break
		}
		b = appendDigits(b, g)
		stop, i = z, z
	}
	e.buf = b
	if len(b) < minAccount {
		return end, false
	}
	e.emit(kindAccount, b)
	return stop, true
}

func (e *extractor) digits(w string) []byte {
	e.buf = appendDigits(e.buf[:0], w)
	return e.buf
}

func appendDigits(b []byte, w string) []byte {
	for i := 0; i < len(w); i++ {
		if isDigit(w[i]) {
			b = append(b, w[i])
		}
	}
	return b
}

// endsClause reports whether s ends in punctuation that ends a run of digit groups.
func endsClause(s string) bool {
	return s != "" && strings.IndexByte(".,;:!?", s[len(s)-1]) >= 0
}

// isDate reports whether w is a date written YYYY-MM-DD.
func isDate(w string) bool {
	return len(w) == 10 && w[4] == '-' && w[7] == '-' && digitsAndDashes(w)
}

// amount emits the canonical decimal of an amount in w ("4,850.00" → "4850", "$1200",
// "1.200,50" → "1200.5"): when it has a currency marker (in w, the word prev before it, or the
// word after end in s) and is not zero, or when it has 3 or more significant digits and is not
// a bare year 1900–2100.
func (e *extractor) amount(w, prev, s string, end int) bool {
	if !isDigit(w[0]) && w[0] < utf8.RuneSelf && w[0] != '$' && w[0] != '+' && w[0] != '-' {
		return false
	}
	currency := false
	w = strings.TrimLeft(w, "+-")
	for _, sym := range currencySymbols {
		if strings.HasPrefix(w, sym) {
			w, currency = strings.TrimLeft(w[len(sym):], "+-"), true
			break
		}
		if strings.HasSuffix(w, sym) {
			w, currency = w[:len(w)-len(sym)], true
			break
		}
	}
	b, ok := canonicalNumber(e.buf[:0], w)
	e.buf = b
	if !ok {
		return false
	}
	return e.number(b, currency || isCurrency(prev) || currencyAfter(s, end))
}

// number emits a canonical decimal when it is significant (see amount).
func (e *extractor) number(b []byte, currency bool) bool {
	sig := 0
	for _, c := range b {
		if isDigit(c) && (sig > 0 || c != '0') {
			sig++
		}
	}
	switch {
	case sig == 0:
		return false
	case currency:
	case sig < minNumber:
		return false
	case len(b) == 4 && isDigit(b[1]) && isDigit(b[2]) && isDigit(b[3]):
		if y := int(b[0]-'0')*1000 + int(b[1]-'0')*100 + int(b[2]-'0')*10 + int(b[3]-'0'); y >= 1900 && y <= 2100 {
			return false
		}
	}
	e.emit(kindNumber, b)
	return true
}

// jsonNumber extracts a JSON number as its canonical decimal.
func (e *extractor) jsonNumber(s string) {
	if strings.ContainsAny(s, "eE") {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			e.float(f)
		}
		return
	}
	b, ok := canonicalDecimal(e.buf[:0], strings.TrimLeft(s, "-"))
	e.buf = b
	if ok {
		e.numberValue(b)
	}
}

func (e *extractor) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return
	}
	b, _ := canonicalDecimal(e.buf[:0], strconv.FormatFloat(math.Abs(f), 'f', -1, 64))
	e.buf = b
	e.numberValue(b)
}

func (e *extractor) integer(i int64) {
	b := strconv.AppendUint(e.buf[:0], absInt(i), 10)
	e.buf = b
	e.numberValue(b)
}

func absInt(i int64) uint64 {
	if i < 0 {
		return uint64(-(i + 1)) + 1
	}
	return uint64(i)
}

// numberValue emits a number of decoded JSON: in output, when it is significant; in an
// argument, whatever its size — the index holds only numbers that were significant where they
// appeared, so 5 matches only an output that said "$5".
func (e *extractor) numberValue(b []byte) {
	if e.arg {
		if len(b) > 1 || b[0] != '0' {
			e.emit(kindNumber, b)
		}
		return
	}
	e.number(b, false)
}

var currencySymbols = []string{"$", "€", "£", "¥", "₹", "₽", "₿"}

var currencyCodes = map[string]bool{
	"usd": true, "eur": true, "gbp": true, "chf": true, "jpy": true, "cny": true, "cad": true,
	"aud": true, "nzd": true, "sek": true, "nok": true, "dkk": true, "pln": true, "czk": true,
	"huf": true, "inr": true, "brl": true, "mxn": true, "sgd": true, "hkd": true, "zar": true,
	"rub": true, "try": true, "btc": true, "eth": true, "usdt": true, "usdc": true,
	"dollars": true, "dollar": true, "euros": true, "euro": true, "pounds": true,
}

// isCurrency reports whether w is a currency marker alone ("$", "EUR", "dollars").
func isCurrency(w string) bool {
	for _, sym := range currencySymbols {
		if w == sym {
			return true
		}
	}
	if len(w) < 3 || len(w) > 7 {
		return false
	}
	var b [7]byte
	return currencyCodes[string(appendLower(b[:0], w))]
}

// currencyAfter reports whether the word after end in s is a currency marker.
func currencyAfter(s string, end int) bool {
	a, z := nextWord(s, end)
	return a < z && z-a <= 8 && isCurrency(trimPunct(s[a:z]))
}

// canonicalNumber appends the canonical decimal of a number written with thousands separators
// and a decimal point or comma. With both separators the last one is the decimal; one kind
// only, repeated or followed by exactly 3 digits after 1 to 3 non-zero-led digits, separates
// thousands; otherwise it is the decimal. Digits led by a zero ("0132", "007") are a code, not
// a number.
func canonicalNumber(b []byte, w string) ([]byte, bool) {
	if w == "" || !isDigit(w[0]) || !isDigit(w[len(w)-1]) || (w[0] == '0' && len(w) > 1 && isDigit(w[1])) {
		return b, false
	}
	dot, comma := strings.Count(w, "."), strings.Count(w, ",")
	for i := 0; i < len(w); i++ {
		if c := w[i]; !isDigit(c) && c != '.' && c != ',' {
			return b, false
		}
	}
	var dec byte
	switch {
	case dot > 0 && comma > 0:
		dec = w[strings.LastIndexAny(w, ".,")]
		if (dec == '.' && dot > 1) || (dec == ',' && comma > 1) {
			return b, false
		}
	case dot == 1 || comma == 1:
		sep := byte('.')
		if comma == 1 {
			sep = ','
		}
		i := strings.IndexByte(w, sep)
		if len(w)-i-1 != 3 || i > 3 || w[0] == '0' {
			dec = sep
		}
	}
	intPart, frac := w, ""
	if dec != 0 {
		i := strings.LastIndexByte(w, dec)
		intPart, frac = w[:i], w[i+1:]
	}
	if strings.ContainsAny(frac, ".,") {
		return b, false
	}
	// Thousands groups are 3 digits after a first group of 1 to 3.
	if strings.ContainsAny(intPart, ".,") {
		groups := strings.FieldsFunc(intPart, func(r rune) bool { return r == '.' || r == ',' })
		if len(groups[0]) > 3 || strings.Count(intPart, ".")+strings.Count(intPart, ",") != len(groups)-1 {
			return b, false
		}
		for _, g := range groups[1:] {
			if len(g) != 3 {
				return b, false
			}
		}
	}
	var digits [64]byte
	d := appendDigits(digits[:0], intPart)
	if frac != "" {
		d = append(d, '.')
		d = append(d, frac...)
	}
	if len(d) > len(digits) {
		return b, false
	}
	return canonicalDecimal(b, string(d))
}

// canonicalDecimal appends digits[.digits] without leading zeros of the integer part and
// trailing zeros of the fraction.
func canonicalDecimal(b []byte, s string) ([]byte, bool) {
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" || !allDigits(intPart) || (frac != "" && !allDigits(frac)) {
		return b, false
	}
	intPart = strings.TrimLeft(intPart, "0")
	frac = strings.TrimRight(frac, "0")
	if intPart == "" {
		intPart = "0"
	}
	b = append(b, intPart...)
	if frac != "" {
		b = append(b, '.')
		b = append(b, frac...)
	}
	return b, true
}

// nextQuote returns the index at or after i of the next byte that may open a quote (a double
// quote, an apostrophe, or 0xE2, the first byte of “ and ‘); -1 when there is none.
func nextQuote(s string, i int) int {
	best := -1
	for _, c := range [...]byte{'"', '\'', 0xE2} {
		end := len(s)
		if best >= 0 {
			end = best
		}
		if j := strings.IndexByte(s[i:end], c); j >= 0 {
			best = i + j
		}
	}
	return best
}

// phrases emits the text between quotes — "…", “…”, ‘…’, and '…' where the apostrophes are
// clearly quotes (after a space, before a non-letter) — of 2 to 12 words in 8 to 200 bytes,
// lower-cased with whitespace collapsed.
func (e *extractor) phrases(s string) {
	for i := 0; i < len(s); i++ {
		// Jump to the next byte that may open a quote (IndexByte is vectorised; most text has
		// none).
		next := nextQuote(s, i)
		if next < 0 {
			return
		}
		i = next
		c := s[i]
		open, close := "", ""
		switch {
		case c == '"':
			open, close = `"`, `"`
		case c == '\'' && (i == 0 || isSpace(s[i-1]) || s[i-1] == '(') && i+1 < len(s) && isAlnum(s[i+1]):
			open, close = "'", "'"
		case strings.HasPrefix(s[i:], "“"):
			open, close = "“", "”"
		case strings.HasPrefix(s[i:], "‘"):
			open, close = "‘", "’"
		default:
			continue
		}
		a := i + len(open)
		z := quoteEnd(s, a, close)
		if z < 0 {
			continue
		}
		e.quoted(s[a:z])
		i = z + len(close) - 1
	}
}

// quoteEnd returns where the closing quote after a in s is, within maxPhrase bytes; -1 if none.
// A closing apostrophe must be followed by a non-letter (else it is "don't").
func quoteEnd(s string, a int, close string) int {
	limit := min(len(s), a+maxPhrase+16)
	for j := a; j < limit; {
		k := strings.Index(s[j:limit], close)
		if k < 0 {
			return -1
		}
		z := j + k
		after := z + len(close)
		if (close != "'" && close != "’") || after == len(s) || !isLetter(s[after]) {
			return z
		}
		j = after
	}
	return -1
}

func (e *extractor) quoted(q string) {
	q = strings.TrimSpace(q)
	if len(q) < minPhrase || len(q) > 2*maxPhrase {
		return
	}
	b := e.collapse(e.buf[:0], q)
	e.buf = b
	if words := 1 + countByte(b, ' '); words >= 2 && words <= maxPhraseWord && len(b) >= minPhrase && len(b) <= maxPhrase {
		e.emit(kindPhrase, b)
	}
}

// knownTLDs are the top-level domains a bare word must end in to count as a host name:
// generic and country domains common in mail and on the web, without those that are also
// common file extensions (.sh, .py, .md, .rs, .pl, .js).
var knownTLDs = map[string]bool{
	"com": true, "net": true, "org": true, "io": true, "co": true, "ai": true, "app": true,
	"dev": true, "info": true, "biz": true, "me": true, "us": true, "uk": true, "de": true,
	"fr": true, "eu": true, "nl": true, "ru": true, "cn": true, "jp": true, "in": true,
	"br": true, "au": true, "ca": true, "ch": true, "it": true, "es": true, "se": true,
	"no": true, "dk": true, "fi": true, "be": true, "at": true, "cz": true, "pt": true,
	"ie": true, "nz": true, "za": true, "mx": true, "ar": true, "xyz": true, "online": true,
	"site": true, "top": true, "shop": true, "store": true, "tech": true, "cloud": true,
	"email": true, "link": true, "live": true, "pro": true, "ly": true, "gg": true, "tv": true,
	"cc": true, "to": true, "ws": true, "gov": true, "edu": true, "mil": true, "int": true,
	"club": true, "work": true, "page": true, "win": true, "bank": true, "finance": true,
	"money": true, "pay": true, "support": true, "services": true, "solutions": true,
}

// bareHost returns w (or the part of it before a path) when it is a domain name with a dot and
// a known top-level domain ("evil-payments.io", "www.example.com/pay").
func bareHost(w string) string {
	if i := strings.IndexByte(w, '/'); i >= 0 {
		w = w[:i]
	}
	w = strings.TrimRight(w, ".")
	dot := strings.LastIndexByte(w, '.')
	if dot <= 0 || !validHost(w) {
		return ""
	}
	var b [16]byte
	if tld := w[dot+1:]; len(tld) > len(b) || !knownTLDs[string(appendLower(b[:0], tld))] {
		return ""
	}
	return w
}

// validHost reports whether h is a host name with a dot: labels of letters, digits and inner
// dashes.
func validHost(h string) bool {
	if len(h) > 253 || !strings.Contains(h, ".") {
		return false
	}
	label := 0
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case isAlnum(c):
			label++
		case c == '-' && label > 0 && i+1 < len(h) && h[i+1] != '.':
			label++
		case c == '.' && label > 0:
			label = 0
		default:
			return false
		}
	}
	return label > 0
}

// letterTLD reports whether the last label of h is 2 or more letters.
func letterTLD(h string) bool {
	tld := h[strings.LastIndexByte(h, '.')+1:]
	if len(tld) < 2 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if !isLetter(tld[i]) {
			return false
		}
	}
	return true
}

// identifier reports whether w is a token of letters, digits, '_' and '-' with both letters and
// digits (order ids, channel ids, tracking numbers).
func identifier(w string) bool {
	letter, digit := false, false
	for i := 0; i < len(w); i++ {
		switch c := w[i]; {
		case isLetter(c):
			letter = true
		case isDigit(c):
			digit = true
		case c == '_' || c == '-':
		default:
			return false
		}
	}
	return letter && digit
}

// plainWord reports whether w is a word of letters only (inner hyphens and apostrophes
// allowed): such a word never matches by itself.
func plainWord(w string) bool {
	for i := 0; i < len(w); {
		if c := w[i]; c < utf8.RuneSelf {
			if !isLetter(c) && c != '-' && c != '\'' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(w[i:])
		if !unicode.IsLetter(r) && r != '’' {
			return false
		}
		i += n
	}
	return true
}

// trimPunct trims the punctuation that surrounds a word in prose.
func trimPunct(w string) string {
	for w != "" {
		r, n := utf8.DecodeRuneInString(w)
		if !leadingPunct(r) {
			break
		}
		w = w[n:]
	}
	for w != "" {
		r, n := utf8.DecodeLastRuneInString(w)
		if !trailingPunct(r) {
			break
		}
		w = w[:len(w)-n]
	}
	return w
}

func leadingPunct(r rune) bool {
	switch r {
	case '(', '[', '{', '<', '"', '\'', '`', '*', '_', '“', '‘', '«', '‹', '¿', '¡':
		return true
	}
	return false
}

func trailingPunct(r rune) bool {
	switch r {
	case '.', ',', ';', ':', '!', '?', ')', ']', '}', '>', '"', '\'', '`', '*', '_', '”', '’', '»', '›', '…':
		return true
	}
	return false
}

func digitsAndDashes(w string) bool {
	digit := false
	for i := 0; i < len(w); i++ {
		switch {
		case isDigit(w[i]):
			digit = true
		case w[i] == '-' && i > 0 && i < len(w)-1 && w[i-1] != '-':
		default:
			return false
		}
	}
	return digit
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func countByte(b []byte, c byte) int {
	n := 0
	for _, x := range b {
		if x == c {
			n++
		}
	}
	return n
}

func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		b = append(b, lowerASCII(s[i]))
	}
	return b
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upperASCII(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

var spaces = [256]bool{' ': true, '\n': true, '\t': true, '\r': true, '\f': true, '\v': true}

func isSpace(c byte) bool  { return spaces[c] }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return (c|0x20) >= 'a' && (c|0x20) <= 'z' }
func isAlnum(c byte) bool  { return isDigit(c) || isLetter(c) }
func isHostChar(c byte) bool {
	return isAlnum(c) || c == '.' || c == '-'
}
func isLocalChar(c byte) bool {
	return isAlnum(c) || strings.IndexByte(".%+-_'", c) >= 0
}
