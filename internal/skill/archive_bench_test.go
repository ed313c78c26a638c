package skill_test

import (
	"bytes"
	"testing"

	"github.com/wardenhq/warden/internal/skilltest"
)

// BenchmarkArchive10MB packs a realistic 10 MB skill into its canonical archive, as `warden
// skill add` does on the client and again on the server.
func BenchmarkArchive10MB(b *testing.B) {
	t := skilltest.Realistic("weekly-digest", 10<<20, 1)
	var buf bytes.Buffer
	b.SetBytes(t.Size)
	for b.Loop() {
		buf.Reset()
		if err := t.Archive(&buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len())/float64(t.Size)*100, "%size")
}
