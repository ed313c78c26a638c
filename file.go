package warden

import (
	"fmt"
	"io"
	"os"
)

// ReadFileLimited reads a whole file of at most limit bytes; a larger one is an error naming
// the path, and nothing past limit+1 bytes is read.
func ReadFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}
