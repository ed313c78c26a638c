package scan

import (
	"strings"
	"testing"
)

// skillText is a skill's worth of ordinary Markdown and code, the text the scanner mostly sees.
var skillText = strings.Repeat(`# Notes skill

Use this skill to read and summarise a project's notes. Call read_notes with the project id;
it returns at most 100 notes, newest first. See https://api.notes.example/v1/docs for fields.

`+"```"+`python
def summarise(notes):
    # Keep the newest ten and join their titles.
    return "; ".join(n["title"] for n in notes[:10])
`+"```"+`

| field | meaning |
|-------|---------|
| id    | the note's id, e.g. 01J9Z3T6Q4 |
| title | the note's title — may hold any Unicode: café, 東京, emoji 👍 |

`, 1)

// BenchmarkScanText measures throughput on ordinary skill text (the bar: ≥ 20 MB/s).
func BenchmarkScanText(b *testing.B) {
	text := strings.Repeat(skillText, (10<<20)/len(skillText)) // 10 MiB
	s := New(corpusOptions)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		if fs := s.Text("skill", text); len(fs) != 0 {
			b.Fatalf("findings in benign text: %+v", fs[0])
		}
	}
}

// BenchmarkScanTextASCII is the same text without any non-ASCII character.
func BenchmarkScanTextASCII(b *testing.B) {
	text := strings.Repeat(strings.Map(func(r rune) rune {
		if r >= 0x80 {
			return 'x'
		}
		return r
	}, skillText), (10<<20)/len(skillText))
	s := New(corpusOptions)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for b.Loop() {
		s.Text("skill", text)
	}
}
