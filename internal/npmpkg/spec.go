// Package npmpkg pins local MCP servers from the npm registry (tool add --npm): it resolves an
// exact version, checks the tarball against the registry's dist.integrity, verifies its
// provenance attestation, keeps the verified tarball, and installs it into the tool's workspace
// with lifecycle scripts disabled, re-checking the installed entry point before every start.
package npmpkg

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/wardenhq/warden"
)

// MaxNameLen is the longest package name npm accepts.
const MaxNameLen = 214

var (
	// nameRE is npm's rule for new package names (lower case, URL-safe, no leading '.' or
	// '_'), scope included. No character of it can make a path step ('/' only after the scope,
	// no name part "." or ".."), so a name can go into a registry URL and a directory as it is.
	nameRE = regexp.MustCompile(`^(?:@[a-z0-9~-][a-z0-9._~-]*/)?[a-z0-9~-][a-z0-9._~-]*$`)
	// versionRE is an exact semantic version, prerelease allowed, build metadata not (npm drops
	// it, so two spellings would name one version).
	versionRE = regexp.MustCompile(`^(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)
	// binRE is a bin name: it becomes a file name under node_modules/.bin.
	binRE = regexp.MustCompile(`^[A-Za-z0-9~-][A-Za-z0-9._~-]{0,127}$`)
)

// ValidateName checks an npm package name.
func ValidateName(name string) error {
	if len(name) > MaxNameLen || !nameRE.MatchString(name) {
		return warden.Errorf(warden.EInvalid, "invalid npm package name %s: lower-case letters, digits, '-', '.', '_' and '~', optionally under a @scope/", quote(name))
	}
	return nil
}

// ValidateVersion checks an exact version: MAJOR.MINOR.PATCH with an optional prerelease.
func ValidateVersion(v string) error {
	if len(v) > 256 || !versionRE.MatchString(v) {
		return warden.Errorf(warden.EInvalid, "invalid npm version %s: give an exact version such as 1.2.3; ranges and dist-tags (latest) are not pinned", quote(v))
	}
	return nil
}

// ValidateBin checks a bin name as --bin gives it.
func ValidateBin(bin string) error {
	if !binRE.MatchString(bin) {
		return warden.Errorf(warden.EInvalid, "invalid bin name %s", quote(bin))
	}
	return nil
}

// ParseSpec splits "NAME@VERSION" ("@scope/pkg@1.2.3", "pkg@1.2.3") and validates both. Only
// exact versions are accepted: a dist-tag or a range would let the registry choose what runs.
func ParseSpec(spec string) (name, version string, err error) {
	i := strings.LastIndexByte(spec, '@')
	if i <= 0 {
		if err := ValidateName(spec); err != nil {
			return "", "", err
		}
		return "", "", warden.Errorf(warden.EInvalid, "npm package %s has no version: give an exact one, e.g. %s@1.2.3", quote(spec), spec)
	}
	name, version = spec[:i], spec[i+1:]
	if err := ValidateName(name); err != nil {
		return "", "", err
	}
	if err := ValidateVersion(version); err != nil {
		return "", "", err
	}
	return name, version, nil
}

// unscoped is the name without its scope: the default bin's name.
func unscoped(name string) string {
	if _, after, ok := strings.Cut(name, "/"); ok {
		return after
	}
	return name
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.QuoteToASCII(s)
}
