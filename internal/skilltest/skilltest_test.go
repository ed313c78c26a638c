package skilltest_test

import (
	"testing"
	"unicode/utf8"

	"github.com/wardenhq/warden/internal/skilltest"
)

func TestRealistic(t *testing.T) {
	tr := skilltest.Realistic("weekly-digest", 1<<20, 1)
	if tr.Size < 1<<20 || tr.Size > 1<<20+200<<10 || len(tr.Files) < 5 {
		t.Fatalf("%d bytes in %d files, want about 1 MiB in several", tr.Size, len(tr.Files))
	}
	m, err := tr.Manifest()
	if err != nil || m.Name != "weekly-digest" {
		t.Fatalf("SKILL.md: %v, %v", m, err)
	}
	kinds := map[string]bool{}
	for i, f := range tr.Files {
		if i > 0 && tr.Files[i-1].Path >= f.Path {
			t.Fatalf("files out of order at %s", f.Path)
		}
		if !utf8.Valid(f.Data) {
			t.Fatalf("%s is not valid UTF-8", f.Path)
		}
		kinds[f.Path[:min(len(f.Path), 9)]] = true
	}
	if !kinds["scripts/l"] || !kinds["scripts/s"] || !kinds["reference"] {
		t.Fatalf("missing scripts or references: %v", kinds)
	}
	if again := skilltest.Realistic("weekly-digest", 1<<20, 1); again.Digest() != tr.Digest() {
		t.Fatal("the same seed gave another skill")
	}
	if other := skilltest.Realistic("weekly-digest", 1<<20, 2); other.Digest() == tr.Digest() {
		t.Fatal("another seed gave the same skill")
	}
}
