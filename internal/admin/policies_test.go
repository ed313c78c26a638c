package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"strings"
	"testing"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/cedar"
	"github.com/wardenhq/warden/internal/gateway"
)

// FuzzPolicyUpload decodes the body of POST /v1/policies as the API does (one JSON value,
// unknown fields refused) and takes it through what ApplyPolicies does before the store: the
// checks, keeping the generated files, compiling. Whatever the body, that is a result or a
// client's error (invalid), never a panic; and the files stored are the people's plus the
// generated ones, none of which an upload can replace.
func FuzzPolicyUpload(f *testing.F) {
	for _, body := range []string{
		`{"files":{"a.cedar":"permit(principal, action, resource);"},"comment":"c","if_version":1}`,
		`{}`, `null`, `{"files":null}`, `{"files":{}}`, `{"files":{"a":null}}`, `{"files":[]}`,
		`{"files":{"@apply/grants.cedar":"forbid(principal, action, resource);"}}`,
		`{"files":{"x.cedar":"permit(principal == Agent::\"bot\", action in Action::\"bank\", resource) when { context.arguments.amount > 1 };"}}`,
		`{"files":{"x.cedar":"permit("}}`, `{"comment":"` + strings.Repeat("x", 2000) + `"}`,
	} {
		f.Add([]byte(body))
	}
	generated := map[string]string{ApplyPrefix + "grants.cedar": "permit(principal == Agent::\"bot\", action, resource);"}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req PolicyApply
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&req) != nil {
			return
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return
		}
		if _, err := checkPolicyApply(req); err != nil {
			if warden.ErrorCode(err) != warden.EInvalid {
				t.Fatalf("a bad upload must be a client's error, got %v", err)
			}
			return
		}
		next := withGenerated(req.Files, generated)
		for name, text := range req.Files {
			if strings.HasPrefix(name, ApplyPrefix) || next[name] != text {
				t.Fatalf("people's file %q replaced a generated one or was not kept", name)
			}
		}
		for name, text := range generated {
			if next[name] != text {
				t.Fatalf("the generated file %q was not kept", name)
			}
		}
		if len(next) != len(req.Files)+len(generated) {
			t.Fatalf("%d files from %d people's and %d generated", len(next), len(req.Files), len(generated))
		}
		before := maps.Clone(req.Files)
		if _, err := cedar.Compile(next, gateway.WithBuiltins(nil), 1); err != nil && warden.ErrorCode(err) != warden.EInvalid {
			t.Fatalf("a policy that does not compile must be a client's error, got %v", err)
		}
		if !maps.Equal(before, req.Files) {
			t.Fatal("compiling changed the upload")
		}
	})
}
