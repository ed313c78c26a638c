// Package supply holds the supply-chain checks that the server and the CLI share: scanning a
// skill's files, and verifying a publisher's minisign signature over an artifact's digest.
// It does no I/O beyond what it is handed, so `warden skill scan` gives offline what the
// server would find.
package supply

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"aead.dev/minisign"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/scan"
	"github.com/wardenhq/warden/internal/skill"
)

// RuleBinaryFile is the rule of the finding that a file was not scanned because it is binary.
const RuleBinaryFile = "binary-file"

// ScanTree runs the scanner over every text file of a skill. A file with a NUL byte is taken
// as binary, is not scanned, and is reported as a low finding, so that a reviewer knows what
// warden did not read. name is the skill's own name (not shadowing). Files are scanned on every
// CPU at once (a busy machine gives a process more time when it has more to run); the
// findings come in the files' order all the same.
func ScanTree(t *skill.Tree, name string, opts scan.Options) []scan.Finding {
	opts.Self = name
	s := scan.New(opts)
	per := make([][]scan.Finding, len(t.Files))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(t.Files)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(t.Files); i = int(next.Add(1)) - 1 {
				per[i] = scanFile(s, t.Files[i])
			}
		})
	}
	wg.Wait()
	var fs []scan.Finding
	for _, f := range per {
		fs = append(fs, f...)
	}
	return fs
}

func scanFile(s *scan.Scanner, f skill.File) []scan.Finding {
	if bytes.IndexByte(f.Data, 0) >= 0 {
		return []scan.Finding{{Rule: RuleBinaryFile, Severity: scan.SeverityLow, Source: f.Path, Line: 1, Column: 1,
			Message: "A binary file (it holds a NUL byte) was not scanned; review it by other means."}}
	}
	return s.Text(f.Path, string(f.Data))
}

// Summary names the first few blocking findings in one line, for an error message.
func Summary(fs []scan.Finding) string {
	var parts []string
	n := 0
	for _, f := range fs {
		if f.Severity < scan.SeverityHigh {
			continue
		}
		n++
		if len(parts) < 3 {
			parts = append(parts, fmt.Sprintf("%s at %s:%d:%d", f.Rule, f.Source, f.Line, f.Column))
		}
	}
	if n > len(parts) {
		parts = append(parts, fmt.Sprintf("and %d more", n-len(parts)))
	}
	return fmt.Sprintf("%d high finding(s): %s", n, strings.Join(parts, ", "))
}

// Publisher is a trusted publisher: a name and its minisign (Ed25519) public key.
type Publisher struct {
	Name string
	Key  minisign.PublicKey
}

// ParsePublisher reads a publisher's key: the base64 line of a minisign public key, with or
// without the "untrusted comment:" line before it.
func ParsePublisher(name, key string) (Publisher, error) {
	if err := warden.ValidateName("publisher", name); err != nil {
		return Publisher{}, err
	}
	line := strings.TrimSpace(key)
	if _, after, ok := strings.Cut(line, "\n"); ok && strings.HasPrefix(line, "untrusted comment:") {
		line = strings.TrimSpace(after)
	}
	var pk minisign.PublicKey
	if err := pk.UnmarshalText([]byte(line)); err != nil {
		return Publisher{}, warden.Errorf(warden.EInvalid, "publisher %s: not a minisign public key: %v", name, err)
	}
	return Publisher{Name: name, Key: pk}, nil
}

// KeyID is how minisign shows a key id: 16 upper-case hex digits.
func KeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// SignedMessage is exactly what a publisher signs for an artifact: the bytes of its digest
// string, "sha256:<64 hex digits>". The digest covers every file, its path and its mode, so
// signing it signs the tree, whatever archive format carries it.
func SignedMessage(digest string) []byte { return []byte(digest) }

// Verify checks a minisign signature (the text of a .minisig file) over digest against the
// trusted publishers, and returns the signer as "NAME (minisign KEYID)". A signature by a key
// that is not trusted, over other bytes, or that does not parse is refused.
func Verify(publishers []Publisher, digest string, signature []byte) (string, error) {
	var sig minisign.Signature
	if err := sig.UnmarshalText(signature); err != nil {
		return "", warden.Errorf(warden.EInvalid, "the signature is not a minisign signature: %v", err)
	}
	for _, p := range publishers {
		if p.Key.ID() != sig.KeyID {
			continue
		}
		// minisign.Verify takes both forms: the minisign tool's default, over a BLAKE2b-512
		// hash of the message (ED), and the legacy one over the message itself (Ed).
		if !minisign.Verify(p.Key, SignedMessage(digest), signature) {
			return "", warden.Errorf(warden.EForbidden,
				"the signature by %s (key %s) does not verify over %s: the files are not what was signed", p.Name, KeyID(sig.KeyID), digest)
		}
		return fmt.Sprintf("%s (minisign %s)", p.Name, KeyID(sig.KeyID)), nil
	}
	return "", warden.Errorf(warden.EForbidden, "the signature is by key %s, which is not a trusted publisher's (supply_chain.publishers)", KeyID(sig.KeyID))
}
