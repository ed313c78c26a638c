// Package scan looks for what should not be in text a model reads or a machine runs on an
// agent's behalf — a skill's files, an MCP tool's description and schema: hidden Unicode,
// instructions aimed at the model, other tools' names, hosts outside the allowed ones,
// credentials, download-and-execute, long encoded blobs.
//
// It is a set of heuristics, not a proof: it finds the known shapes of poisoning cheaply and
// explains each finding, and a person decides. Findings of SeverityHigh block acceptance unless
// an admin overrides them with a reason; the rest are shown. False positives are failures too,
// so every rule is held by a corpus of benign and malicious samples (corpus_test.go).
package scan

import (
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/wardenhq/warden/internal/redact"
)

// Severity orders findings: High blocks acceptance.
type Severity uint8

// The severities.
const (
	SeverityLow Severity = iota + 1
	SeverityMedium
	SeverityHigh
)

var severityNames = [...]string{SeverityLow: "low", SeverityMedium: "medium", SeverityHigh: "high"}

func (s Severity) String() string {
	if int(s) < len(severityNames) && severityNames[s] != "" {
		return severityNames[s]
	}
	return fmt.Sprintf("severity(%d)", s)
}

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if n != "" && n == string(b) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("unknown severity %q: want low, medium or high", b)
}

// Finding is one thing the scanner found.
type Finding struct {
	Rule     string   `json:"rule"`
	Severity Severity `json:"severity"`
	// Source names where it was found: a file's path in a skill, or a manifest field such as
	// "tool:send_email/description".
	Source string `json:"source"`
	Line   int    `json:"line"`   // 1-based
	Column int    `json:"column"` // 1-based, in Unicode code points
	// Message says what was found and why it matters, in one sentence.
	Message string `json:"message"`
	// Excerpt is the matched text made safe to show: invisible characters written as \u{…},
	// credentials redacted, at most excerptMax bytes.
	Excerpt string `json:"excerpt,omitempty"`
}

// Rule describes one rule, for reports (SARIF) and docs.
type Rule struct {
	ID          string
	Severity    Severity // the default; some rules raise or lower it per finding
	Description string
}

// Rules lists every rule the scanner applies.
var Rules = []Rule{
	{"hidden-tag-characters", SeverityHigh, "Unicode tag characters (U+E0000–U+E007F) spell text that is invisible to people and read by models."},
	{"bidi-control", SeverityHigh, "Bidirectional control characters reorder what people see, so the text they review is not the text the model reads."},
	{"variation-selector-run", SeverityHigh, "A run of Unicode variation selectors can smuggle bytes behind a visible character."},
	{"zero-width", SeverityMedium, "A zero-width character inside a word hides or splits text (e.g. to slip an instruction past a reviewer or a filter)."},
	{"model-instruction", SeverityHigh, "An instruction aimed at the model rather than a description for it: ignore your instructions, keep something from the user, act before any other tool."},
	{"tool-shadowing", SeverityMedium, "The text names another tool, which can steer the model's use of that tool (shadowing); high when it also tells the model what to do."},
	{"sensitive-path", SeverityMedium, "The text names a file that holds credentials or an agent's configuration."},
	{"url-not-allowed", SeverityMedium, "A URL names a host outside the tool's allowed hosts."},
	{"credential", SeverityHigh, "A credential (an API key, a token, a private key, a password in a URL)."},
	{"download-execute", SeverityHigh, "A download piped into a shell or interpreter: whatever the server sends then runs."},
	{"encoded-blob", SeverityMedium, "A long base64 or hex blob, which can hide a payload from review."},
}

// Options configures a Scanner.
type Options struct {
	// Self is the name of the tool or skill being scanned: its own name is not shadowing.
	Self string
	// Tools are the names of the other tools an agent may see; a mention of one is shadowing.
	// A name that is one plain word ("search", "list") is too common to tell, and not looked for.
	Tools []string
	// AllowedHosts are the hosts URLs may name ("api.example.com", or "*.example.com" for its
	// subdomains). Nil means there is no host list, and URLs are not judged.
	AllowedHosts []string
}

// excerptMax bounds an excerpt.
const excerptMax = 160

// Scanner applies the rules with one set of options. It is safe for concurrent use.
type Scanner struct {
	self    string
	tools   map[string]bool // the other tools' names, lowercased
	longest int             // the longest of them, in bytes
	// toolWords finds the tools' names in a line, which must hold one before its words are
	// looked up; nil when there are too many names to compile, and every line is looked at.
	toolWords *keywords
	hosts     []string
	hostsOn   bool
}

// New prepares a scanner.
func New(opts Options) *Scanner {
	s := &Scanner{self: opts.Self, hosts: opts.AllowedHosts, hostsOn: opts.AllowedHosts != nil, tools: map[string]bool{}}
	for _, t := range opts.Tools {
		if t != "" && t != opts.Self && distinctive(t) {
			s.tools[strings.ToLower(t)] = true
			s.longest = max(s.longest, len(t))
		}
	}
	if len(s.tools) > 0 {
		names := slices.Collect(maps.Keys(s.tools))
		s.toolWords, _ = newKeywords(names, make([]int, len(names))) // every name sets bit 0
	}
	return s
}

// toolMentions yields the byte ranges of the words of lower that are other tools' names. A
// word is a run of letters, digits and the separators names use; a sentence's final dot is
// not part of it.
func (s *Scanner) toolMentions(lower string) iter.Seq2[int, int] {
	return func(yield func(int, int) bool) {
		for i := 0; i < len(lower); {
			if !nameByte(lower[i]) {
				i++
				continue
			}
			j := i
			for j < len(lower) && nameByte(lower[j]) {
				j++
			}
			end := j
			for end > i && lower[end-1] == '.' {
				end--
			}
			if end-i <= s.longest && s.tools[lower[i:end]] && !yield(i, end) {
				return
			}
			i = j
		}
	}
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c >= 'A' && c <= 'Z'
}

// distinctive reports whether a tool name is unusual enough that its mention in text means the
// tool rather than the word: it has a separator or a digit, or is camelCase.
func distinctive(name string) bool {
	if strings.ContainsAny(name, "_-.0123456789") {
		return true
	}
	for i := 1; i < len(name); i++ {
		if 'a' <= name[i-1] && name[i-1] <= 'z' && 'A' <= name[i] && name[i] <= 'Z' {
			return true
		}
	}
	return false
}

// Blocking reports whether any finding blocks acceptance (SeverityHigh).
func Blocking(fs []Finding) bool { return Max(fs) >= SeverityHigh }

// Max returns the highest severity among the findings, or 0 for none.
func Max(fs []Finding) Severity {
	var m Severity
	for _, f := range fs {
		m = max(m, f.Severity)
	}
	return m
}

// Text scans one text (a file, a description) line by line; source names it in findings.
// Text that is not valid UTF-8 is scanned as far as it reads and reported once.
func (s *Scanner) Text(source, text string) []Finding {
	var fs []Finding
	if !utf8.ValidString(text) {
		fs = append(fs, Finding{Rule: "encoded-blob", Severity: SeverityMedium, Source: source, Line: 1, Column: 1,
			Message: "the text is not valid UTF-8: it cannot be reviewed as text"})
		text = strings.ToValidUTF8(text, "\uFFFD")
	}
	lineNo := 0
	for line := range strings.Lines(text) {
		lineNo++
		fs = s.line(fs, source, lineNo, strings.TrimRight(line, "\r\n"), lineNo == 1)
	}
	return fs
}

// line applies every rule to one line.
func (s *Scanner) line(fs []Finding, source string, lineNo int, line string, first bool) []Finding {
	add := func(rule string, sev Severity, byteCol int, msg, excerpt string) {
		fs = append(fs, Finding{Rule: rule, Severity: sev, Source: source, Line: lineNo,
			Column: utf8.RuneCountInString(line[:byteCol]) + 1, Message: msg, Excerpt: safeExcerpt(excerpt)})
	}
	// What the model reads: compatibility forms folded (fullwidth letters are letters), tag
	// characters as the text they spell, other invisible characters removed, lowercased. Offsets into it are approximate, so
	// findings on it point at the line's first column unless the line was plain ASCII.
	// A plain ASCII line is lowercased only when a rule's words are in it: ruleWords and
	// toolWords match its letters whatever their case.
	ascii := isASCII(line)
	plain, lower := line, line
	if !ascii {
		hiddenUnicode(add, line, first)
		plain = reveal(norm.NFKC.String(line))
		lower = lowerString(plain)
		if len(lower) != len(plain) {
			plain = lower // lowercasing changed byte lengths: excerpts come from the lowercased text
		}
	}
	found := ruleWords.find(lower)
	tools := len(s.tools) > 0 && (s.toolWords == nil || s.toolWords.find(lower) != keySet{})
	urls := s.hostsOn && found.has(urlBit)
	sensitive, downloadExec := sensitivePathGate.open(found), downloadExecGate.open(found)
	instructions := false
	for _, p := range instructionPatterns {
		instructions = instructions || p.open(found)
	}
	if ascii && (tools || urls || sensitive || downloadExec || instructions) {
		lower = strings.ToLower(line)
	}
	col := func(i int) int {
		if ascii {
			return i
		}
		return 0
	}
	if instructions {
		for _, p := range instructionPatterns {
			if !p.open(found) {
				continue
			}
			for _, loc := range p.re.FindAllStringIndex(lower, -1) {
				add("model-instruction", SeverityHigh, col(loc[0]), "an instruction aimed at the model: "+quote(plain[loc[0]:loc[1]]), plain[loc[0]:loc[1]])
			}
		}
	}
	if tools {
		for start, end := range s.toolMentions(lower) {
			name := lower[start:end]
			sev, why := SeverityMedium, ""
			if commandRE.MatchString(lower) {
				sev, why = SeverityHigh, ", in a line that tells the model what to do"
			}
			add("tool-shadowing", sev, col(start), "names another tool, "+quote(name)+why, plain[start:end])
		}
	}
	if sensitive {
		for _, loc := range sensitivePathRE.FindAllStringIndex(lower, -1) {
			add("sensitive-path", SeverityMedium, col(loc[0]), "names a file that holds credentials or agent configuration: "+quote(plain[loc[0]:loc[1]]), plain[loc[0]:loc[1]])
		}
	}
	if urls {
		for _, m := range findURLs(lower) {
			host := lower[m[2]:m[3]]
			if !s.hostAllowed(host) {
				add("url-not-allowed", SeverityMedium, col(m[0]), "a URL to "+quote(host)+", which is not one of the allowed hosts", plain[m[0]:m[1]])
			}
		}
	}
	for _, loc := range redact.FindCredentials(line) {
		add("credential", SeverityHigh, loc[0], "a credential; remove it and rotate it", redact.Marker)
	}
	if downloadExec {
		for _, loc := range downloadExecRE.FindAllStringIndex(lower, -1) {
			add("download-execute", SeverityHigh, col(loc[0]), "a download piped into a shell or interpreter: "+quote(plain[loc[0]:loc[1]]), plain[loc[0]:loc[1]])
		}
	}
	if start, n, kind := longestBlob(line); n >= minBlob {
		sev := SeverityMedium
		if strings.Contains(strings.ToLower(line[:start]), "data:image/") {
			sev = SeverityLow // an inline image in Markdown: visible when rendered
		}
		add("encoded-blob", sev, start, fmt.Sprintf("a %s blob of %d characters", kind, n), line[start:start+min(n, 40)]+"…")
	}
	return fs
}

// hostAllowed matches a URL's host against the allowed hosts.
func (s *Scanner) hostAllowed(host string) bool {
	for _, h := range s.hosts {
		h = strings.ToLower(h)
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// credentials redacts credential-looking text (there are no known secret values to add).
var credentials = redact.New(nil, nil)

// safeExcerpt makes an excerpt safe to show: invisible and control characters written as
// \u{…}, credentials redacted, at most excerptMax bytes.
func safeExcerpt(s string) string {
	if s == "" {
		return ""
	}
	s = credentials.String(strings.ToValidUTF8(s, "\uFFFD"))
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= excerptMax {
			b.WriteString("…")
			break
		}
		if invisible(r) || r < 0x20 || r == 0x7f {
			fmt.Fprintf(&b, `\u{%X}`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
