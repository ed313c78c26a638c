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

// vocabulary is ordinary words for sentences that vary as real text does (so that the text
// compresses as real text does, to about a third). It has "the", "user", "not", "tool", "must"
// and "that", which open the scanner's gates, and none of the words that would complete an
// instruction to a model.
var vocabulary = strings.Fields(`the the the a a an of of to to in in and and is is for on with as by at from
	that this it its be are was were has have can will may should must not no each every other more most
	some any all one two three first last next previous new old same own only also then than when where
	which what who how why if or but so because while after until since within between across about over
	note notes project projects report reports digest summary summaries author authors team teams week weeks
	day days date dates time zone page pages cursor limit field fields value values title titles body text
	tag tags draft drafts link links file files folder folders script scripts reference references schema
	schemas example examples request requests response responses error errors result results record records
	list lists item items entry entries group groups order count total number id ids name names user users
	tool tools call calls step steps check checks run runs output input format formats template templates
	read reads write writes group groups sort sorts merge merges split splits quote quotes skip skips
	include includes return returns keep open close start end add remove change update fetch load store
	send receive parse render export import convert compare match filter select count sum join wait retry
	short long small large empty full recent older newer daily weekly monthly yearly plain rich clear exact
	missing broken valid invalid optional required default custom public private shared local remote
	English French German Japanese Greek language languages translation translations character characters
	café naïve Zürich São Paulo résumé façade über Größe données 東京 日本語 Ελληνικά русский — “notes” ‘drafts’ …
	JSON YAML CSV Markdown HTML API HTTP UTC RFC UUID v2 v3 10 20 50 100 200 300 500 1000`)

// sentence is a handwritten sentence or, twice as often, one of random words.
func sentence(rng *rand.Rand, b *strings.Builder) {
	if rng.IntN(3) == 0 {
		b.WriteString(pick(rng, prose))
		return
	}
	n := 6 + rng.IntN(14)
	for i := range n {
		w := pick(rng, vocabulary)
		if i == 0 && 'a' <= w[0] && w[0] <= 'z' {
			w = string(w[0]-'a'+'A') + w[1:]
		} else if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w)
		if i > 2 && i < n-2 && rng.IntN(10) == 0 {
			b.WriteByte(',')
		}
	}
	b.WriteByte('.')
}

// said is a sentence as a string.
func said(rng *rand.Rand) string {
	var b strings.Builder
	sentence(rng, &b)
	return b.String()
}

// ident is an identifier of two ASCII words.
func ident(rng *rand.Rand) string {
	for {
		a, b := pick(rng, vocabulary), pick(rng, vocabulary)
		if isIdent(a) && isIdent(b) {
			return strings.ToLower(a + "_" + b)
		}
	}
}

func isIdent(w string) bool {
	for i := 0; i < len(w); i++ {
		if c := w[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func paragraph(rng *rand.Rand, b *strings.Builder) {
	for range 2 + rng.IntN(4) {
		sentence(rng, b)
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
			b.WriteString("- ")
			sentence(rng, b)
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	case 2:
		b.WriteString("| field | type | meaning |\n|---|---|---|\n")
		for range 4 + rng.IntN(6) {
			fmt.Fprintf(b, "| %s_%s | %s | ", pick(rng, vocabulary), pick(rng, []string{"id", "title", "author", "created_at", "project", "tags", "body"}),
				pick(rng, []string{"string", "integer", "RFC 3339 time", "array of strings"}))
			sentence(rng, b)
			b.WriteString(" |\n")
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
	fn, field, other := ident(rng), ident(rng), ident(rng)
	fmt.Fprintf(b, `def %s(notes, limit=%d):
    """%s"""
    out = []
    for note in notes:
        if note.get("%s") and not INCLUDE_DRAFTS:
            continue
        %s = note["%s"].strip()
        out.append({"id": note["id"], "%s": %s, "week": note["created_at"][:10]})
        if len(out) >= limit:
            break
    return sorted(out, key=lambda n: n["%s"], reverse=%s)


`, fn, 10+rng.IntN(90), said(rng), field, other, field, field, other, field, pick(rng, []string{"True", "False"}))
}

func shellChunk(rng *rand.Rand, b *strings.Builder) {
	fmt.Fprintf(b, `# %s
project="${1:?usage: $0 PROJECT}"
out="$(mktemp -d)"
curl -fsS --retry 3 -H "Accept: application/json" "https://api.notes.example.com/v2/projects/${project}/%s?page=%d" -o "$out/page.json"
jq -r '.notes[] | select(.draft | not) | [.id, .title] | @tsv' "$out/page.json" | sort -k2 | head -n %d > "$out/notes.tsv"
python3 scripts/lib_000.py "$out/notes.tsv" || { echo "digest failed" >&2; exit 1; }
rm -rf "$out"

`, said(rng), ident(rng), rng.IntN(50), 10+rng.IntN(90))
}

func jsonChunk(rng *rand.Rand, b *strings.Builder) {
	fmt.Fprintf(b, `{"name": "notes_%d", "description": %q, "inputSchema": {"type": "object", "properties": {"project": {"type": "string", "description": %q}, "limit": {"type": "integer", "minimum": 1, "maximum": %d}}, "required": ["project"]}}
`, rng.IntN(1000), said(rng), said(rng), 100+rng.IntN(900))
}
