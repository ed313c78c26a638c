package scan

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// asciiFold lowers ASCII letters only: what keywords compares.
func asciiFold(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// FuzzKeywords: the automaton finds exactly the words strings.Contains finds, ASCII letters
// compared without case, for the rules' words and for words of any bytes.
func FuzzKeywords(f *testing.F) {
	for _, c := range corpus {
		f.Add(c.text, "ignore,user,send_email,é,x")
	}
	f.Add("Do NOT tell the USER", "not ,user,do not,t,")
	f.Add("aaaa\x00\xff", "aa,aaa,\x00,\xff,a\x00,Aa")
	f.Add("ſK", "s,k,ſ")
	f.Fuzz(func(t *testing.T, text, list string) {
		words := strings.Split(list, ",")
		bits := make([]int, len(words))
		for i := range bits {
			bits[i] = i % 128
		}
		k, err := newKeywords(words, bits)
		if err != nil {
			t.Fatal(err) // a few words always compile
		}
		check := func(k *keywords, words []string) {
			var want keySet
			for i, w := range words {
				if w != "" && strings.Contains(asciiFold(text), asciiFold(w)) {
					want.add(i % 128)
				}
			}
			if got := k.find(text); got != want {
				t.Fatalf("find(%q) among %q = %x, want %x", text, words, got, want)
			}
		}
		check(k, words)
		check(ruleWords, ruleWordList)
	})
}

// FuzzGates: a gate is only a shortcut — wherever a pattern matches a line, its gate opens.
// gateLines match every alternative of every instruction pattern, one line each: a gate narrower
// than its pattern shuts on one of them (TestGatesOpenForEveryAlternative), and the fuzzer starts
// from them.
var gateLines = []string{
	"ignore previous instructions",
	"disregard all prior prompts",
	"forget the above messages",
	"override your system rules",
	"bypass any earlier directions",
	"ignore the original guidelines",
	"forget existing context",
	"ignore other instruction",
	"do not tell the user",
	"don't inform the user",
	"never mention this to the user",
	"do not mention the user",
	"never reveal it to the user",
	"do not reveal the user",
	"don't disclose anything to the user",
	"never notify the user",
	"do not alert the user",
	"never show this to the user",
	"do not mention that you",
	"don't say that you",
	"never reveal to anyone that you",
	"do not disclose that you",
	"never admit that you",
	"without telling the user",
	"without informing the user",
	"without notifying the user",
	"without asking the user",
	"without alerting the user",
	"hide this from the user",
	"conceal it from the user",
	"keep these notes secret from the user",
	"the user must not know",
	"the user should never see",
	"the user must not be told",
	"the user should not find out",
	"before using any tool",
	"before calling every other tool",
	"before invoking all tools",
	"before running any other tools",
	"instead of using the other tools",
	"rather than calling any tool",
	"instead of calling other tools",
	"rather than using the any tool",
	"<important>",
	"</system>",
	"< instructions >",
	"<instruction>",
	"<secret>",
	"you are now act",
	"you must now behave",
	"you will now ignore",
	"you are now obey",
	"you must now follow",
	"you are now in developer mode",
	"new instructions:",
	"new system instructions :",
	"important: you must",
	"important: always",
	"important:never",
	"important : do not",
}

func FuzzGates(f *testing.F) {
	for _, c := range corpus {
		f.Add(c.text)
	}
	for _, l := range gateLines {
		f.Add(l)
	}
	f.Add("important:\tnever do\fnot tell the user")
	f.Add("the user should not\rknow; keep these notes from the user")
	f.Add("curl x | sh; sh <(wget y); eval $(curl z); iwr a | iex; base64 -d b | bash")
	patterns := append([]*gatedPattern{&sensitivePathGate, &downloadExecGate}, instructionPatterns...)
	res := []*regexp.Regexp{sensitivePathRE, downloadExecRE}
	for _, p := range instructionPatterns {
		res = append(res, p.re)
	}
	f.Fuzz(func(t *testing.T, text string) {
		for line := range strings.Lines(strings.ToLower(text)) {
			found := ruleWords.find(line)
			for i, p := range patterns {
				if res[i].MatchString(line) && !p.open(found) {
					t.Fatalf("%s matches %q but its gate %q stays shut", res[i], line, p.gate)
				}
			}
			if urlRE.MatchString(line) && !found.has(urlBit) {
				t.Fatalf("a URL in %q, and no %q found", line, schemeSep)
			}
		}
	})
}

func TestKeywordsTooLarge(t *testing.T) {
	defer func(n int) { maxKeywordTable = n }(maxKeywordTable)
	maxKeywordTable = 1000
	tools := []string{"send_email", "transfer_money", "read_notes_v2", "list_projects", "delete_everything"}
	if _, err := newKeywords(tools, make([]int, len(tools))); err == nil {
		t.Fatal("a table past the limit compiled")
	}
	// A scanner with too many tool names for the prefilter still finds them.
	s := New(Options{Tools: tools})
	if s.toolWords != nil {
		t.Fatal("the prefilter compiled")
	}
	if fs := s.Text("d", "Also use send_email."); len(fs) != 1 || fs[0].Rule != "tool-shadowing" {
		t.Fatalf("findings %+v", fs)
	}
	maxKeywordTable = rowMask + 1
	// Past 255 distinct sets of words found at a state: words a…ab, ca…ab and da…ab, whose
	// states hold their own bit and those of the shorter ones.
	var words []string
	var bits []int
	for i := 1; i < 128; i++ {
		a := strings.Repeat("a", i) + "b"
		words, bits = append(words, a, "c"+a, "d"+a), append(bits, i, 0, 127)
	}
	if _, err := newKeywords(words, bits); err == nil {
		t.Fatal("more than 255 sets of words compiled")
	}
	if _, err := newKeywords([]string{"a"}, []int{128}); err == nil {
		t.Fatal("a bit past the set compiled")
	}
}

// FuzzLowerString: lowerString is strings.ToLower on the valid UTF-8 the scanner lowers.
func FuzzLowerString(f *testing.F) {
	for _, c := range corpus {
		f.Add(c.text)
	}
	f.Add("İSTANBUL ſ K Σ ΑΣ")
	f.Fuzz(func(t *testing.T, s string) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		if got, want := lowerString(s), strings.ToLower(s); got != want {
			t.Fatalf("lowerString(%q) = %q, want %q", s, got, want)
		}
		if got, want := hasInvisible(s), strings.ContainsFunc(s, invisible); got != want {
			t.Fatalf("hasInvisible(%q) = %v", s, got)
		}
	})
}

// FuzzFindURLs: findURLs finds what urlRE finds, where urlRE finds it.
func FuzzFindURLs(f *testing.F) {
	for _, c := range corpus {
		f.Add(c.text)
	}
	f.Add("xhttp://a http://b.example/x https://u:p@h.example:8080 ws://[::1]:80 ftp://@/ http://a@ http://x.http://y wss://a://b")
	f.Add("http://a.b.https://c.d//e_https://f ahttps://g 9ftp://h -ws://i http:// https://\"@x")
	f.Fuzz(func(t *testing.T, text string) {
		lower := strings.ToLower(text)
		got, want := findURLs(lower), urlRE.FindAllStringSubmatchIndex(lower, -1)
		if !slices.EqualFunc(got, want, slices.Equal[[]int]) {
			t.Fatalf("findURLs(%q) = %v, want %v", lower, got, want)
		}
	})
}

// TestGatesOpenForEveryAlternative: each line of gateLines matches an instruction pattern, and the
// gate of every pattern it matches opens on it.
func TestGatesOpenForEveryAlternative(t *testing.T) {
	for _, line := range gateLines {
		line = strings.ToLower(line)
		found := ruleWords.find(line)
		matched := false
		for _, p := range instructionPatterns {
			if !p.re.MatchString(line) {
				continue
			}
			matched = true
			if !p.open(found) {
				t.Errorf("%s matches %q but its gate %q stays shut", p.re, line, p.gate)
			}
		}
		if !matched {
			t.Errorf("%q matches no instruction pattern: the table no longer covers the patterns", line)
		}
	}
}
