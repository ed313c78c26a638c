//go:build unix

package scan

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/skill"
	"github.com/wardenhq/warden/internal/skilltest"
)

// cpuTime is the process's user and system time: on a shared machine wall time measures the
// neighbours too, so the throughput benchmarks report their rate per CPU second (cpu-MB/s)
// beside the wall-clock MB/s.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration, size int64) {
	b.ReportMetric(float64(size)*float64(b.N)/(cpuTime(b)-start).Seconds()/1e6, "cpu-MB/s")
}

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
	start := cpuTime(b)
	for b.Loop() {
		if fs := s.Text("skill", text); len(fs) != 0 {
			b.Fatalf("findings in benign text: %+v", fs[0])
		}
	}
	reportCPU(b, start, int64(len(text)))
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
	start := cpuTime(b)
	for b.Loop() {
		s.Text("skill", text)
	}
	reportCPU(b, start, int64(len(text)))
}

// realisticSkill is a 10 MB skill of Markdown references, scripts and JSON examples
// (skilltest.Realistic), as `warden skill add` scans it: file by file, with the skill's own name
// and no tool or host list.
func realisticSkill() (*Scanner, []skill.File, int64) {
	t := skilltest.Realistic("weekly-digest", 10<<20, 1)
	return New(Options{Self: "weekly-digest"}), t.Files, t.Size
}

// BenchmarkScanSkill measures throughput on a realistic skill tree (the bar: ≥ 20 MB/s).
func BenchmarkScanSkill(b *testing.B) {
	s, files, size := realisticSkill()
	texts := make([]string, len(files))
	for i, f := range files {
		texts[i] = string(f.Data)
	}
	b.SetBytes(size)
	b.ResetTimer()
	start := cpuTime(b)
	for b.Loop() {
		for i, f := range files {
			if fs := s.Text(f.Path, texts[i]); len(fs) != 0 {
				b.Fatalf("findings in a benign skill: %+v", fs[0])
			}
		}
	}
	reportCPU(b, start, size)
}

// BenchmarkScanBaselineIndex is the floor the scanner is measured against: one strings.Index
// pass over the same skill for a word it does not hold, at the speed of memory.
func BenchmarkScanBaselineIndex(b *testing.B) {
	_, files, size := realisticSkill()
	texts := make([]string, len(files))
	for i, f := range files {
		texts[i] = string(f.Data)
	}
	b.SetBytes(size)
	b.ResetTimer()
	start := cpuTime(b)
	for b.Loop() {
		for _, t := range texts {
			if strings.Contains(t, "disregard") {
				b.Fatal("the word is in the skill")
			}
		}
	}
	reportCPU(b, start, size)
}

// BenchmarkScanBaselineRegexp is one case-insensitive regular expression of the scanner's kind
// run over the same skill file by file: what a scanner without prefilters pays for each rule.
func BenchmarkScanBaselineRegexp(b *testing.B) {
	_, files, size := realisticSkill()
	texts := make([]string, len(files))
	for i, f := range files {
		texts[i] = string(f.Data)
	}
	re := regexp.MustCompile(`(?i)\b(?:ignore|disregard)\s+(?:previous|prior)\s+instructions\b`)
	b.SetBytes(size)
	b.ResetTimer()
	start := cpuTime(b)
	for b.Loop() {
		for _, t := range texts {
			if re.MatchString(t) {
				b.Fatal("the pattern matches the skill")
			}
		}
	}
	reportCPU(b, start, size)
}

// BenchmarkScanJSON measures the scan of MCP tool manifests (canonical JSON of a few KB each,
// with other tools' names and an allowed host list), as every changed manifest is scanned.
func BenchmarkScanJSON(b *testing.B) {
	var docs [][]byte
	var size int64
	for i := range 200 {
		doc := fmt.Sprintf(`{"annotations":{"readOnlyHint":true},"description":%q,"inputSchema":{"properties":{"cursor":{"description":"Where to continue: the next_cursor of the previous page.","type":"string"},"limit":{"description":"At most this many notes, 1 to 100 (default 20).","maximum":100,"minimum":1,"type":"integer"},"project":{"description":"The project's id, as list_projects returns it; see https://api.notes.example/v1/docs.","type":"string"}},"required":["project"],"type":"object"},"name":"read_notes_%d","outputSchema":{"properties":{"next_cursor":{"type":"string"},"notes":{"items":{"properties":{"id":{"type":"string"},"title":{"description":"The note's title — any Unicode: café, 東京.","type":"string"}},"type":"object"},"type":"array"}},"type":"object"}}`,
			strings.Repeat("Reads the notes of a project, newest first. Before using this tool, make sure the project exists. ", 1+i%8), i)
		docs = append(docs, []byte(doc))
		size += int64(len(doc))
	}
	s := New(corpusOptions)
	b.SetBytes(size)
	b.ResetTimer()
	start := cpuTime(b)
	for b.Loop() {
		for _, d := range docs {
			if fs, err := s.JSON("tool", d); err != nil || len(fs) != 0 {
				b.Fatalf("findings in a benign manifest: %v %+v", err, fs)
			}
		}
	}
	reportCPU(b, start, size)
}
