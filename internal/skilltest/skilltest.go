// Package skilltest makes realistic Agent Skills for benchmarks and tests: a SKILL.md, scripts
// and references of ordinary text, of any size. It is for tests only: no production package
// imports it.
package skilltest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/wardenhq/warden/internal/skill"
)

// Realistic returns a benign skill named name of about size bytes (at least a few KB), the same
// for the same seed: SKILL.md, about a fifth of the bytes in Python and shell scripts, a tenth
// in JSON Lines examples (tool schemas), the rest in Markdown references — prose with typographic
// punctuation and some non-Latin text, headings, lists, tables, links and code blocks. Files
// are 20–200 KB. The text uses the words instructions to a model are made of ("the user",
// "before", "tool", "must", "not") in ordinary sentences, so that a scanner pays for what it
// pays for on real skills; it holds nothing a scanner should flag.
func Realistic(name string, size int, seed uint64) *skill.Tree {
	rng := rand.New(rand.NewPCG(seed, 0x5c111))
	files := map[string]skill.File{}
	put := func(p string, exec bool, data []byte) {
		files[p] = skill.File{Path: p, Exec: exec, Data: data}
	}
	put(skill.ManifestFile, false, []byte(manifest(name)))
	total := len(files[skill.ManifestFile].Data)
	for i := 0; total < size; i++ {
		n := min(20<<10+rng.IntN(180<<10), max(size-total, 1))
		var p string
		var exec bool
		var data []byte
		switch k := rng.IntN(10); {
		case k < 1:
			p, data = fmt.Sprintf("references/schemas/tool-%03d.jsonl", i), fill(rng, n, jsonChunk)
		case k < 2:
			p, exec, data = fmt.Sprintf("scripts/step-%03d.sh", i), true, fill(rng, n, shellChunk)
		case k < 3:
			p, exec, data = fmt.Sprintf("scripts/lib_%03d.py", i), true, fill(rng, n, pythonChunk)
		default:
			p, data = fmt.Sprintf("references/part-%03d.md", i), fill(rng, n, markdownChunk)
		}
		put(p, exec, data)
		total += len(data)
	}
	t := &skill.Tree{}
	for _, f := range files {
		t.Files = append(t.Files, f)
		t.Size += int64(len(f.Data))
	}
	slices.SortFunc(t.Files, func(a, b skill.File) int { return strings.Compare(a.Path, b.Path) })
	return t
}

func manifest(name string) string {
	return "---\nname: " + name + "\ndescription: Summarise a project's notes and reports into a weekly digest. Use when the user asks for a summary of recent work.\nallowed-tools: Read Bash(python3:*)\nmetadata:\n  author: team-docs\n---\n" +
		"# Weekly digest\n\nRead the notes with `scripts/lib_000.py`, then follow references/part-000.md.\nBefore you write the digest, check that every note has a date; the user must not get notes from another project.\n"
}

// fill writes chunks until n bytes, cut at a line's end.
func fill(rng *rand.Rand, n int, chunk func(*rand.Rand, *strings.Builder)) []byte {
	var b strings.Builder
	b.Grow(n + 4096)
	for b.Len() < n {
		chunk(rng, &b)
	}
	return []byte(b.String())
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

var prose = []string{
	"The digest lists each note once, newest first, with its author and date.",
	"Before sending the digest, make sure the user has read the previous one — otherwise merge both.",
	"Notes without a date are skipped; the tool reports how many it skipped.",
	"You must not change a note's text: quote it, or link to it.",
	"If the project has more than 500 notes, read them in pages of 100 with the cursor.",
	"It is important to keep the user's time zone when you group notes by day.",
	"Do not include drafts unless the user asks for them.",
	"The report tool returns JSON; see the schema in references/schemas for its fields.",
	"Never guess a missing field: say that it is missing.",
	"Use “quotes” for titles, and keep the original spelling — café, naïve, Zürich, São Paulo.",
	"When a note is in another language (日本語, Ελληνικά, русский), keep it as written and add a one-line summary in English.",
	"The previous version of this skill used a different format; the new format is described below.",
	"Tell the user which notes were left out and why, in one sentence at the end.",
	"Rules for grouping: by project first, then by week, then by author.",
	"The API rate limit is 10 requests per second; the script waits when it is reached.",
	"Run the checks before using the export script, so that a broken note stops the run early.",
	"A summary should fit on one screen: about 300 words.",
	"Emoji in titles (👍, ✅, 🚀) are kept; they matter to some teams.",
	"Instead of copying whole notes, link to them: https://notes.example.com/p/{project}/n/{id}.",
	"Context: the notes come from several teams, each with its own template.",
	"This step is optional — skip it when the project has fewer than ten notes.",
	"Mention the authors by name, not by e-mail address.",
}

func paragraph(rng *rand.Rand, b *strings.Builder) {
	for range 2 + rng.IntN(4) {
		b.WriteString(pick(rng, prose))
		b.WriteByte(' ')
	}
	b.WriteString("\n\n")
}

func markdownChunk(rng *rand.Rand, b *strings.Builder) {
	switch rng.IntN(8) {
	case 0:
		fmt.Fprintf(b, "## %s\n\n", pick(rng, []string{"Grouping notes", "Dates and time zones", "Paging through a project", "Authors", "What to leave out", "Formatting the digest"}))
	case 1:
		for range 3 + rng.IntN(4) {
			fmt.Fprintf(b, "- %s\n", pick(rng, prose))
		}
		b.WriteByte('\n')
	case 2:
		b.WriteString("| field | type | meaning |\n|---|---|---|\n")
		for range 4 + rng.IntN(6) {
			fmt.Fprintf(b, "| %s | %s | %s |\n", pick(rng, []string{"id", "title", "author", "created_at", "project", "tags", "body"}),
				pick(rng, []string{"string", "integer", "RFC 3339 time", "array of strings"}), pick(rng, prose))
		}
		b.WriteByte('\n')
	case 3:
		fmt.Fprintf(b, "See [the API reference](https://docs.notes.example.com/api/v2/%s#%s) and [examples](https://github.com/example/notes-digest/blob/main/examples/%d.md).\n\n",
			pick(rng, []string{"notes", "projects", "authors"}), pick(rng, []string{"list", "get", "search"}), rng.IntN(100))
	case 4:
		b.WriteString("```python\n")
		pythonChunk(rng, b)
		b.WriteString("```\n\n")
	case 5:
		fmt.Fprintf(b, "Example request id: %016x%016x, page token `%s`.\n\n", rng.Uint64(), rng.Uint64(), pick(rng, []string{"eyNext", "c2Vjb25k", "MTAw"}))
	default:
		paragraph(rng, b)
	}
}

func pythonChunk(rng *rand.Rand, b *strings.Builder) {
	fn := pick(rng, []string{"load_notes", "group_by_week", "summarise", "format_digest", "skip_drafts"})
	fmt.Fprintf(b, `def %s_%d(notes, limit=%d):
    """%s"""
    out = []
    for note in notes:
        if note.get("draft") and not INCLUDE_DRAFTS:
            continue
        title = note["title"].strip()
        out.append({"id": note["id"], "title": title, "week": note["created_at"][:10]})
        if len(out) >= limit:
            break
    return sorted(out, key=lambda n: n["week"], reverse=True)


`, fn, rng.IntN(1000), 10+rng.IntN(90), pick(rng, prose))
}

func shellChunk(rng *rand.Rand, b *strings.Builder) {
	fmt.Fprintf(b, `# %s
project="${1:?usage: $0 PROJECT}"
out="$(mktemp -d)"
curl -fsS --retry 3 -H "Accept: application/json" "https://api.notes.example.com/v2/projects/${project}/notes?page=%d" -o "$out/page.json"
jq -r '.notes[] | select(.draft | not) | [.id, .title] | @tsv' "$out/page.json" | sort -k2 | head -n %d > "$out/notes.tsv"
python3 scripts/lib_000.py "$out/notes.tsv" || { echo "digest failed" >&2; exit 1; }
rm -rf "$out"

`, pick(rng, prose), rng.IntN(50), 10+rng.IntN(90))
}

func jsonChunk(rng *rand.Rand, b *strings.Builder) {
	fmt.Fprintf(b, `{"name": "notes_%d", "description": %q, "inputSchema": {"type": "object", "properties": {"project": {"type": "string", "description": %q}, "limit": {"type": "integer", "minimum": 1, "maximum": %d}}, "required": ["project"]}}
`, rng.IntN(1000), pick(rng, prose), pick(rng, prose), 100+rng.IntN(900))
}
