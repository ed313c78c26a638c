package scan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Hidden Unicode.

func isTag(r rune) bool { return r >= 0xE0000 && r <= 0xE007F }

func isBidi(r rune) bool { return r >= 0x202A && r <= 0x202E || r >= 0x2066 && r <= 0x2069 }

func isZeroWidth(r rune) bool {
	switch r {
	case 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E, 0x00AD:
		return true
	}
	return false
}

func isVariationSelector(r rune) bool {
	return r >= 0xFE00 && r <= 0xFE0F || r >= 0xE0100 && r <= 0xE01EF
}

// invisible reports whether r draws nothing a reviewer would see.
func invisible(r rune) bool {
	return isTag(r) || isBidi(r) || isZeroWidth(r) || isVariationSelector(r) || r == 0x200E || r == 0x200F
}

// reveal is what a model may read in s: tag characters as the ASCII they stand for, the other
// invisible characters removed (so that an instruction split by them still reads as one).
func reveal(s string) string {
	if !hasInvisible(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 0xE0020 && r <= 0xE007E:
			return r - 0xE0000
		case invisible(r):
			return -1
		}
		return r
	}, s)
}

// hasInvisible is strings.ContainsFunc(s, invisible), skipping ASCII bytes (no invisible
// character is ASCII) without decoding them.
func hasInvisible(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if invisible(r) {
			return true
		}
		i += size
	}
	return false
}

// lowerString is strings.ToLower(s) for valid UTF-8, with the ASCII bytes of a mostly ASCII line
// lowered in place rather than rune by rune.
func lowerString(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, unicode.ToLower(r)) // an invalid byte is RuneError, as strings.Map makes it
		i += size
	}
	return string(b)
}

// hiddenUnicode reports tag characters (with the text they spell), bidirectional controls,
// runs of variation selectors, and zero-width characters inside words. A zero-width joiner
// between two symbols (an emoji sequence), a non-joiner in a script that uses it, and a byte
// order mark that opens the text are ordinary, and not reported.
func hiddenUnicode(add func(rule string, sev Severity, col int, msg, excerpt string), line string, first bool) {
	for i := 0; i < len(line); {
		if line[i] < utf8.RuneSelf { // no hidden character is ASCII
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(line[i:])
		switch {
		case isTag(r):
			j, hidden := i, []byte{}
			for j < len(line) {
				t, n := utf8.DecodeRuneInString(line[j:])
				if !isTag(t) {
					break
				}
				if t >= 0xE0020 && t <= 0xE007E {
					hidden = append(hidden, byte(t-0xE0000))
				}
				j += n
			}
			add("hidden-tag-characters", SeverityHigh, i, fmt.Sprintf("%d invisible tag characters spelling %s", utf8.RuneCountInString(line[i:j]), quote(string(hidden))), line[i:j])
			i = j
			continue
		case isBidi(r):
			add("bidi-control", SeverityHigh, i, fmt.Sprintf("a bidirectional control character U+%04X", r), line[i:i+size])
		case isVariationSelector(r):
			j, n := i, 0
			for j < len(line) {
				t, sz := utf8.DecodeRuneInString(line[j:])
				if !isVariationSelector(t) {
					break
				}
				j += sz
				n++
			}
			if n >= 2 {
				add("variation-selector-run", SeverityHigh, i, fmt.Sprintf("%d variation selectors in a row, which can encode hidden bytes", n), line[i:j])
			}
			i = j
			continue
		case isZeroWidth(r):
			if !(r == 0xFEFF && first && i == 0) && insideWord(line, i, size, r) {
				add("zero-width", SeverityMedium, i, fmt.Sprintf("a zero-width character U+%04X inside a word", r), around(line, i, size))
			}
		}
		i += size
	}
}

// insideWord reports whether the zero-width character at line[i:i+size] stands beside a
// letter or digit in the way hiding does: next to an ASCII letter or digit (where no script
// needs a joiner), or any zero-width space, word joiner or soft hyphen beside a letter.
func insideWord(line string, i, size int, r rune) bool {
	prev, _ := utf8.DecodeLastRuneInString(line[:i])
	next, _ := utf8.DecodeRuneInString(line[i+size:])
	asciiAlnum := func(c rune) bool { return c < utf8.RuneSelf && (unicode.IsLetter(c) || unicode.IsDigit(c)) }
	if asciiAlnum(prev) || asciiAlnum(next) {
		return true
	}
	if r == 0x200C || r == 0x200D { // joiners: used by scripts and emoji sequences
		return false
	}
	return unicode.IsLetter(prev) || unicode.IsLetter(next)
}

func around(line string, i, size int) string {
	start, end := max(0, i-12), min(len(line), i+size+12)
	for start > 0 && !utf8.RuneStart(line[start]) {
		start--
	}
	for end < len(line) && !utf8.RuneStart(line[end]) {
		end++
	}
	return line[start:end]
}

// Instructions aimed at the model. The patterns run on lowercased text with invisible
// characters removed and compatibility forms folded. Each has a gate: groups of words of
// which the line must hold one from every group before the pattern runs. One pass of
// ruleWords over a line finds every gate's words at once, so that an ordinary line costs that
// pass and no regular expression.

type gatedPattern struct {
	gate [][]string
	re   *regexp.Regexp
	// groups holds each group of the gate as the bits of its words in ruleWords.
	groups []keySet
}

// open reports whether a line holding the words found opens the gate.
func (p *gatedPattern) open(found keySet) bool {
	for _, g := range p.groups {
		if !found.meets(g) {
			return false
		}
	}
	return true
}

// spaced is word followed by each character \s matches, for a gate: "not" followed by a space
// is in "do not tell" and not in "notes".
func spaced(word string) []string {
	return []string{word + " ", word + "\t", word + "\n", word + "\f", word + "\r"}
}

// doNot is in every "do not", "don't" and "never" the patterns begin with.
var doNot = append(spaced("not"), "n't", "never")

// notUsers ends "the user" where it is not "the user's" or "the users".
const notUsers = `(?:$|[^\w'’])`

var instructionPatterns = []*gatedPattern{
	{gate: [][]string{{"ignor", "disregard", "forget", "overrid", "bypass"}, {"instruction", "prompt", "message", "rule", "direction", "guideline", "context"}},
		re: regexp.MustCompile(`\b(?:ignore|disregard|forget|override|bypass)\s+(?:(?:all|any|the|your|of)\s+)*(?:(?:previous|prior|above|earlier|preceding|other|system|original|existing)\s+)?(?:instructions?|prompts?|messages|rules|directions|guidelines|context)\b`)},
	{gate: [][]string{doNot, {"tell", "inform", "mention", "reveal", "disclose", "notify", "alert", "show"}, {"user"}},
		re: regexp.MustCompile(`\b(?:do\s+not|don't|never)\s+(?:tell|inform|mention\s+(?:this\s+|it\s+)?to|mention|reveal\s+(?:this\s+|it\s+)?to|reveal|disclose|notify|alert|show)\s+(?:this\s+|it\s+|anything\s+)?(?:to\s+)?the\s+user` + notUsers)},
	{gate: [][]string{doNot, {"mention", "say", "reveal", "disclose", "admit"}, {"that"}, {"you"}},
		re: regexp.MustCompile(`\b(?:do\s+not|don't|never)\s+(?:mention|say|reveal|disclose|admit)\s+(?:to\s+anyone\s+)?that\s+you\b`)},
	{gate: [][]string{{"without"}, {"telling", "informing", "notifying", "asking", "alerting"}, {"user"}},
		re: regexp.MustCompile(`\bwithout\s+(?:telling|informing|notifying|asking|alerting)\s+the\s+user` + notUsers)},
	{gate: [][]string{{"hide", "conceal", "keep"}, {"from"}, {"user"}},
		re: regexp.MustCompile(`\b(?:hide|conceal|keep)\s+(?:this|it|these\s+\w+)\s+(?:secret\s+)?from\s+the\s+user` + notUsers)},
	{gate: [][]string{{"user"}, {"must", "should"}, append(spaced("not"), "never"), {"know", "see", "told", "find"}},
		re: regexp.MustCompile(`\bthe\s+user\s+(?:must|should)\s+(?:not|never)\s+(?:know|see|be\s+told|find\s+out)`)},
	{gate: [][]string{{"before"}, {"using", "calling", "invoking", "running"}, {"any", "every", "all"}, {"tool"}},
		re: regexp.MustCompile(`\bbefore\s+(?:using|calling|invoking|running)\s+(?:any|every|all)\s+(?:other\s+)?tools?`)},
	{gate: [][]string{{"instead", "rather"}, {"using", "calling"}, {"other", "any"}, {"tool"}},
		re: regexp.MustCompile(`\b(?:instead\s+of|rather\s+than)\s+(?:using|calling)\s+(?:the\s+)?(?:other|any)\s+tools?`)},
	{gate: [][]string{{"<"}, {"important", "system", "instruction", "secret"}},
		re: regexp.MustCompile(`<\s*/?\s*(?:important|system|instructions?|secret)\s*>`)},
	{gate: [][]string{{"you"}, {"now"}},
		re: regexp.MustCompile(`\byou\s+(?:are|must|will)\s+now\s+(?:act|behave|ignore|obey|follow|in\s+developer\s+mode)`)},
	{gate: [][]string{{"instructions"}, {"new"}},
		re: regexp.MustCompile(`\bnew\s+(?:system\s+)?instructions\s*:`)},
	{gate: [][]string{{"important"}, {":"}, {"must", "always", "never", "not"}},
		re: regexp.MustCompile(`\bimportant\s*:\s*(?:you\s+must|always|never|do\s+not)\b`)},
}

// commandRE: words telling the model what to do, which make a tool's mention shadowing.
var commandRE = regexp.MustCompile(`\b(?:always|must|instead|never|before|first|do\s+not|don't|only\s+use|whenever|redirect|replace)\b`)

var sensitivePathRE = regexp.MustCompile(strings.Join([]string{
	`~?/?\.ssh(?:/[\w.-]*)?`,
	`\bid_(?:rsa|dsa|ecdsa|ed25519)\b`,
	`\.aws/(?:credentials|config)`,
	`/etc/(?:shadow|passwd|sudoers)\b`,
	`(?:^|[\s/"'=(])\.env(?:\.[\w-]+)?\b`,
	`\.(?:netrc|npmrc|pypirc|git-credentials|docker/config\.json|kube/config)`,
	`\bclaude_desktop_config\.json\b`,
	`\.cursor/mcp\.json`,
	`\bwarden-data/(?:admin\.token|master\.key)`,
}, "|"))

var sensitivePathGate = gatedPattern{gate: [][]string{{".ssh", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".aws/", "/etc/", ".env",
	".netrc", ".npmrc", ".pypirc", ".git-credentials", ".docker/config", ".kube/config", "claude_desktop_config", "mcp.json", "warden-data/"}}}

// urlRE finds URLs and captures their host.
var urlRE = regexp.MustCompile(`\b(?:https?|wss?|ftp)://(?:[^\s/@"'<>]*@)?(\[[0-9a-f:.]+\]|[a-z0-9.-]+)`)

// urlTailRE is what follows "://" in urlRE.
var urlTailRE = regexp.MustCompile(`^(?:[^\s/@"'<>]*@)?(\[[0-9a-f:.]+\]|[a-z0-9.-]+)`)

// urlSchemes are urlRE's schemes; no two end alike, so at most one ends where "://" begins.
var urlSchemes = []string{"https", "http", "wss", "ws", "ftp"}

// findURLs is urlRE.FindAllStringSubmatchIndex(lower, -1), without running the expression from
// every byte of the line: each "://" is where a URL may be, the scheme before it is compared
// as text, and only the rest is matched (by urlTailRE, anchored). A match never holds a "://"
// of another (neither user information nor host has a '/'), and the next one must begin where
// the last ended, as FindAll's do.
func findURLs(lower string) [][]int {
	var out [][]int
	end := 0
	for from := 0; ; {
		k := strings.Index(lower[from:], schemeSep)
		if k < 0 {
			return out
		}
		k += from
		from = k + 1
		start := -1
		for _, sc := range urlSchemes {
			if strings.HasSuffix(lower[:k], sc) {
				start = k - len(sc)
				break
			}
		}
		if start < end || start > 0 && isWordByte(lower[start-1]) {
			continue
		}
		tail := k + len(schemeSep)
		m := urlTailRE.FindStringSubmatchIndex(lower[tail:])
		if m == nil {
			continue
		}
		end = tail + m[1]
		out = append(out, []int{start, end, tail + m[2], tail + m[3]})
		from = end
	}
}

// isWordByte is \w, by which \b tells a word's edge.
func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

var downloadExecRE = regexp.MustCompile(strings.Join([]string{
	`\b(?:curl|wget|fetch)\b[^|\n;]*\|\s*(?:sudo\s+)?(?:ba|z|da|k|c)?sh\b`,
	`\b(?:curl|wget)\b[^|\n;]*\|\s*(?:sudo\s+)?(?:python3?|perl|ruby|node|php)\b`,
	`\b(?:ba|z)?sh\s+<\(\s*(?:curl|wget)\b`,
	`\b(?:ba|z)?sh\s+-c\s+["']?\$\(\s*(?:curl|wget)\b`,
	`\beval\s+["']?\$\(\s*(?:curl|wget)\b`,
	`\b(?:iwr|irm|invoke-webrequest|invoke-restmethod)\b[^|\n;]*\|\s*(?:iex|invoke-expression)\b`,
	`\bbase64\s+(?:-d|--decode)\b[^|\n;]*\|\s*(?:ba|z)?sh\b`,
}, "|"))

var downloadExecGate = gatedPattern{gate: [][]string{{"curl", "wget", "fetch", "iwr", "irm", "invoke-", "base64"}, {"|", "<(", "$("}}}

// schemeSep is in every URL urlRE finds: a line without it has none.
const schemeSep = "://"

// ruleWords finds the words of every gate (ruleWordList, in the order of their bits), and
// schemeSep, in one pass; urlBit is schemeSep's.
var ruleWords, ruleWordList, urlBit = compileGates(slices.Concat(instructionPatterns, []*gatedPattern{&sensitivePathGate, &downloadExecGate}))

// compileGates gives each distinct word of the gates a bit, sets each gate's groups, and
// compiles the words with schemeSep into one automaton.
func compileGates(patterns []*gatedPattern) (*keywords, []string, int) {
	bit := map[string]int{}
	var words []string
	bitOf := func(w string) int {
		b, ok := bit[w]
		if !ok {
			b = len(words)
			bit[w] = b
			words = append(words, w)
		}
		return b
	}
	for _, p := range patterns {
		p.groups = nil
		for _, g := range p.gate {
			var m keySet
			for _, w := range g {
				m.add(bitOf(w))
			}
			p.groups = append(p.groups, m)
		}
	}
	url := bitOf(schemeSep)
	bits := make([]int, len(words))
	for i := range bits {
		bits[i] = i
	}
	if len(words) > 128 {
		panic(fmt.Sprintf("scan: %d gate words, more than a keySet holds", len(words)))
	}
	k, err := newKeywords(words, bits)
	if err != nil {
		panic(err) // a fixed table: every test fails here first
	}
	return k, words, url
}

// minBlob is the shortest run of base64 or hex characters reported as a blob: longer than any
// key, hash or identifier a description has reason to hold (a SHA-512 in hex is 128).
const minBlob = 200

// encoded reports whether a run of base64 characters looks like encoded data rather than a
// rule of dashes or a long identifier: it mixes digits and letters and uses many symbols.
func encoded(run string) bool {
	var seen [256]bool
	distinct, digits, letters := 0, 0, 0
	for i := 0; i < len(run); i++ {
		c := run[i]
		if !seen[c] {
			seen[c] = true
			distinct++
		}
		switch {
		case '0' <= c && c <= '9':
			digits++
		case 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z':
			letters++
		}
	}
	return distinct >= 12 && digits*50 >= len(run) && letters*4 >= len(run)
}

// longestBlob finds the longest run of base64 characters (the hex digits are among them) that
// looks encoded, and says which alphabet it keeps to.
func longestBlob(line string) (start, n int, kind string) {
	if len(line) < minBlob {
		return 0, 0, ""
	}
	bestStart, best, bestHex := 0, 0, false
	runStart, hex := -1, true
	for i := 0; i <= len(line); i++ {
		c := byte(0)
		if i < len(line) {
			c = line[i]
		}
		b64 := 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-' || c == '_'
		if b64 {
			if runStart < 0 {
				runStart, hex = i, true
			}
			hex = hex && ('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F')
			continue
		}
		if runStart >= 0 && i-runStart > best && i-runStart >= minBlob && encoded(line[runStart:i]) {
			bestStart, best, bestHex = runStart, i-runStart, hex
		}
		runStart = -1
	}
	kind = "base64"
	if bestHex {
		kind = "hex"
	}
	return bestStart, best, kind
}
