package auditsink

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/wardenhq/warden"
)

// File appends events as lines to a file and rotates it by size: path becomes path.1, path.1
// becomes path.2, and so on, keeping maxFiles rotated files. A batch is synced to disk before it
// counts as delivered.
type File struct {
	path     string
	maxSize  int64
	maxFiles int
	enc      Encoder

	mu   sync.Mutex
	f    *os.File
	size int64
}

// NewFile returns a file sink; the file is opened on first delivery.
func NewFile(path string, maxSize int64, maxFiles int, enc Encoder) *File {
	return &File{path: path, maxSize: maxSize, maxFiles: maxFiles, enc: enc}
}

// Deliver appends evs, rotating before a line that would take the file over its size.
func (s *File) Deliver(ctx context.Context, evs []*warden.AuditEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.open(); err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, ev := range evs {
		line, err := s.enc(ev)
		if err != nil {
			return fmt.Errorf("file sink: encode event %d: %w", ev.Seq, err)
		}
		if s.size+int64(buf.Len()+len(line)+1) > s.maxSize && s.size+int64(buf.Len()) > 0 {
			if err := s.flush(&buf); err != nil {
				return err
			}
			if err := s.rotate(); err != nil {
				return err
			}
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return s.flush(&buf)
}

func (s *File) open() error {
	if s.f != nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("file sink: %w", err)
	}
	s.f, s.size = f, fi.Size()
	return nil
}

// flush writes and syncs what buf holds. A write that fails part way leaves a partial line,
// which the redelivery of the whole batch follows: readers skip a line that does not parse.
func (s *File) flush(buf *bytes.Buffer) error {
	if buf.Len() == 0 {
		return nil
	}
	n, err := s.f.Write(buf.Bytes())
	s.size += int64(n)
	buf.Reset()
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		s.f.Close()
		s.f = nil
		return fmt.Errorf("file sink: %w", err)
	}
	return nil
}

func (s *File) rotate() error {
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("file sink: %w", err)
	}
	s.f = nil
	for i := s.maxFiles - 1; i >= 1; i-- {
		err := os.Rename(fmt.Sprintf("%s.%d", s.path, i), fmt.Sprintf("%s.%d", s.path, i+1))
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("file sink: rotate: %w", err)
		}
	}
	if err := os.Rename(s.path, s.path+".1"); err != nil {
		return fmt.Errorf("file sink: rotate: %w", err)
	}
	return s.open()
}

// Close closes the file.
func (s *File) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
