package skill

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkReadDir10MB reads and digests a 10 MB skill of 200 files: what `warden skill add`
// pays before scanning (the bar for the whole add: ≤ 1 s).
func BenchmarkReadDir10MB(b *testing.B) {
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	os.WriteFile(filepath.Join(dir, ManifestFile), []byte(manifest), 0o644)
	os.Mkdir(filepath.Join(dir, "references"), 0o755)
	chunk := make([]byte, 50<<10)
	for i := range 200 {
		for j := range chunk {
			chunk[j] = byte('a' + rng.IntN(26))
		}
		os.WriteFile(filepath.Join(dir, "references", fmt.Sprintf("part-%03d.md", i)), chunk, 0o644)
	}
	b.SetBytes(200 * int64(len(chunk)))
	b.ResetTimer()
	for b.Loop() {
		tr, err := ReadDir(dir, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		_ = tr.Digest()
	}
}
