package cedar

import (
	"errors"
	"net"
	"net/url"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cedar-policy/cedar-go/types"
	"golang.org/x/net/idna"
)

// Attributes of a normalised URL (context.norm.<arg> of a "format": "uri" argument).
const (
	attrScheme = "scheme"
	attrHost   = "host"
	attrPort   = "port"
	attrPath   = "path"
	attrURL    = "url"
)

// maxNormInput bounds a string warden normalises: an e-mail address or a URL longer than this is
// not one a policy should vouch for.
const maxNormInput = 4096

// idnaProfile maps a domain as a browser's lookup would (UTS #46, lower case, transitional
// processing off), and refuses what has no such mapping.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// normalise returns the normalised companion (context.norm) of a string argument whose schema
// declares a format: an e-mail address lower-cased with its domain in IDNA ASCII form; a URL as
// the record {scheme, host, port, path, url}; a hostname lower-cased in IDNA ASCII form without
// its trailing dot. A value that has none is an error naming the format: the schema said what
// it must be.
func normalise(format, s string) (types.Value, error) {
	if len(s) > maxNormInput {
		return nil, errors.New("longer than " + strconv.Itoa(maxNormInput) + " bytes, too long for a " + formatNoun(format))
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || unicode.IsControl(r) }) {
		return nil, errors.New("not a " + formatNoun(format) + ": it holds spaces, control characters or bytes that are not UTF-8")
	}
	switch format {
	case formatEmail:
		local, domain, ok := cutLast(s, "@")
		if !ok || local == "" || domain == "" || strings.ContainsAny(local, "@") {
			return nil, errors.New("not an e-mail address (want local@domain)")
		}
		host, err := hostname(domain)
		if err != nil {
			return nil, errors.New("not an e-mail address: its domain " + err.Error())
		}
		return types.String(strings.ToLower(local) + "@" + host), nil
	case formatHostname:
		host, err := hostname(s)
		if err != nil {
			return nil, errors.New("not a hostname: " + err.Error())
		}
		return types.String(host), nil
	case formatURI, formatURL:
		return normURL(s)
	}
	return types.String(s), nil
}

func formatNoun(format string) string {
	switch format {
	case formatEmail:
		return "e-mail address"
	case formatHostname:
		return "hostname"
	}
	return "URL"
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// hostname lower-cases a DNS name into its IDNA ASCII form, without a trailing dot.
func hostname(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errors.New("is empty")
	}
	ascii, err := idnaProfile.ToASCII(s)
	if err != nil {
		return "", errors.New("is not a valid domain name")
	}
	ascii = strings.ToLower(ascii)
	// A name whose ASCII form does not map to itself (a label the mapping rewrites twice) has
	// two readings: refused, so that an allowlist entry matches it or nothing does.
	if again, err := idnaProfile.ToASCII(ascii); err != nil || again != ascii {
		return "", errors.New("is not a valid domain name")
	}
	if len(ascii) > 253 {
		return "", errors.New("is longer than 253 characters")
	}
	for _, label := range strings.Split(ascii, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return "", errors.New("is not a valid domain name")
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", errors.New("is not a valid domain name")
			}
		}
	}
	return ascii, nil
}

var defaultPorts = map[string]int64{"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}

// normURL is the record of an absolute URL: scheme and host lower-cased (the host in IDNA
// ASCII form, an IP address as Go prints it), port explicit or the scheme's default (0 when it
// has none), path cleaned ("a/../b" is "b", no trailing slash, "/" at least) and url, all of it
// again without the fragment and the default port. User information is refused: a policy
// comparing hosts must not meet "https://trusted.example@evil.example/".
func normURL(s string) (types.Value, error) {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return nil, errors.New("not an absolute URL (want scheme://host/path)")
	}
	if u.User != nil {
		return nil, errors.New("not a URL warden normalises: it carries user information before the host")
	}
	scheme := strings.ToLower(u.Scheme)
	h := u.Hostname()
	var host string
	if ip := net.ParseIP(h); ip != nil {
		host = ip.String()
	} else if host, err = hostname(h); err != nil {
		return nil, errors.New("not a URL: its host " + err.Error())
	}
	port := defaultPorts[scheme]
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return nil, errors.New("not a URL: its port is not a number from 0 to 65535")
		}
		port = int64(n)
	}
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	p = path.Clean(p)
	hostPort := host
	if strings.Contains(host, ":") {
		hostPort = "[" + host + "]"
	}
	if u.Port() != "" && int64(port) != defaultPorts[scheme] {
		hostPort += ":" + strconv.FormatInt(port, 10)
	}
	full := scheme + "://" + hostPort + p
	if u.RawQuery != "" {
		full += "?" + u.RawQuery
	}
	return types.NewRecord(types.RecordMap{
		attrScheme: types.String(scheme),
		attrHost:   types.String(host),
		attrPort:   types.Long(port),
		attrPath:   types.String(p),
		attrURL:    types.String(full),
	}), nil
}
