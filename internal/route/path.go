package route

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

// requestPath is a request path that passed every check in parseRequestPath.
type requestPath struct {
	segments []string // decoded
	trailing bool     // the path ends in "/"
	// canonical reports whether the path as received is already what escape would return, which
	// saves building the forwarded path again for the usual plain path.
	canonical bool
}

// parseRequestPath splits an escaped request path into decoded segments, and rejects every form that
// a server, proxy or filesystem behind the upstream could resolve to a path other than the one
// warden matched. Each rule closes a known way of smuggling a request past a route:
//
//   - Empty segments ("//"): some servers merge slashes, others do not, and "//host" reads as an
//     authority to URL resolvers.
//   - "." and ".." segments, raw or percent-encoded, and ".." anywhere in a segment: dot segments
//     climb out of the matched prefix, and Windows servers strip trailing dots and spaces, so
//     "..." or ".. " become "..".
//   - Encoded "/" and "\" (%2F, %5C) and raw "\": servers that decode before routing, or treat "\"
//     as a separator, see more segments than warden did.
//   - ";", raw or encoded: Tomcat, Spring and others cut a segment at ';' (path parameters), so
//     "/admin;x=1/" reaches "/admin/".
//   - Control characters (C0, DEL, C1), raw or encoded, and invisible formatting characters: they
//     truncate paths in C code, split log lines, and disguise resources in audit events.
//   - Invalid percent-encoding, and decoded bytes that are not UTF-8 (this includes overlong
//     encodings such as %C0%AE for '.').
//   - A percent-encoding left after decoding ("%252e" decodes to "%2e"): a server that decodes
//     twice would see "." — so double encoding is refused rather than decoded once more.
//   - Characters that Unicode compatibility normalisation or Windows "best fit" code-page mapping
//     turn into '/', '\' or '.' (fullwidth solidus, yen sign, one dot leader, …).
//   - '?' and '#', and any other byte that must be percent-encoded in a path: raw, they mean the
//     caller did not pass an escaped path.
//   - Paths over maxPathLen bytes, as received or once escaped, or over maxSegments segments.
//
// A trailing "/" is kept and significant: "/user/" is not "/user", because many APIs treat the two
// as different resources and guessing would forward a request to one that was matched as the other.
//
// The segments are appended to buf, which lets the caller keep them on its stack.
func parseRequestPath(raw string, buf []string) (requestPath, error) {
	if len(raw) > maxPathLen {
		return requestPath{}, warden.Errorf(warden.EInvalid, "request path is %d bytes long; the limit is %d",
			len(raw), maxPathLen)
	}
	if raw == "" || raw[0] != '/' {
		return requestPath{}, warden.Errorf(warden.EInvalid, "request path must start with \"/\"")
	}
	if raw == "/" {
		return requestPath{canonical: true}, nil
	}
	rest := raw[1:]
	p := requestPath{trailing: strings.HasSuffix(rest, "/"), canonical: true}
	if p.trailing {
		rest = rest[:len(rest)-1]
	}
	n := strings.Count(rest, "/") + 1
	if n > maxSegments {
		return requestPath{}, warden.Errorf(warden.EInvalid, "request path has %d segments; the limit is %d", n, maxSegments)
	}
	p.segments = buf[:0]
	escaped := 0 // the length of the forwarded path
	for i := 1; ; i++ {
		seg, after, more := strings.Cut(rest, "/")
		if seg == "" {
			return requestPath{}, warden.Errorf(warden.EInvalid, "request path: segment %d is empty (doubled \"/\")", i)
		}
		decoded, reason := decodeSegment(seg)
		if reason != "" {
			if len(seg) > 64 {
				seg = seg[:64] + "…"
			}
			return requestPath{}, warden.Errorf(warden.EInvalid, "request path: segment %d %q: %s", i, seg, reason)
		}
		p.segments = append(p.segments, decoded)
		n := escapedLen(decoded)
		p.canonical = p.canonical && decoded == seg && n == len(seg)
		escaped += 1 + n
		if !more {
			break
		}
		rest = after
	}
	// Escaping can make a path up to three times longer; the forwarded path is held to the same
	// limit, so that it can be matched again and no upstream gets a path warden would refuse.
	if p.trailing {
		escaped++
	}
	if escaped > maxPathLen {
		return requestPath{}, warden.Errorf(warden.EInvalid, "request path is %d bytes long once escaped; the limit is %d",
			escaped, maxPathLen)
	}
	return p, nil
}

// decodeSegment percent-decodes one escaped segment, or says why it is refused.
func decodeSegment(seg string) (decoded, reason string) {
	escapes := 0
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if c == '%' {
			if i+2 >= len(seg) || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return "", "invalid percent-encoding"
			}
			escapes++
			i += 2
			continue
		}
		if reason := rawByteReason(c); reason != "" {
			return "", reason
		}
	}
	decoded = seg
	if escapes > 0 {
		b := make([]byte, 0, len(seg)-2*escapes)
		for i := 0; i < len(seg); i++ {
			if seg[i] == '%' {
				b = append(b, unhex(seg[i+1])<<4|unhex(seg[i+2]))
				i += 2
			} else {
				b = append(b, seg[i])
			}
		}
		decoded = string(b)
		if reason := decodedReason(decoded); reason != "" {
			return "", reason
		}
	}
	if decoded == "." || strings.Contains(decoded, "..") {
		return "", `"." and ".." are not allowed in a path`
	}
	return decoded, ""
}

// rawByteReason says why c may not appear unescaped in a segment, or returns "". What it allows is
// RFC 3986's pchar, less ';', plus '[' and ']', which Go's URL.EscapedPath leaves unescaped.
func rawByteReason(c byte) string {
	if isAlnum(c) {
		return ""
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', '=', ':', '@', '[', ']':
		return ""
	case '\\':
		return "backslash is not allowed"
	case ';':
		return `";" is not allowed (path parameters, as in /admin;x=1)`
	case '?', '#':
		return "query or fragment in the path: pass the escaped path alone"
	}
	if c < 0x20 || c == 0x7f {
		return "control character"
	}
	return "character must be percent-encoded"
}

// decodedReason says why a decoded segment is refused, or returns "".
func decodedReason(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '/':
			return "encoded slash (%2F) is not allowed"
		case c == '\\':
			return "encoded backslash (%5C) is not allowed"
		case c == ';':
			return `encoded ";" (%3B) is not allowed`
		case c < 0x20 || c == 0x7f:
			return "control character"
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			return "double percent-encoding is not allowed"
		case c >= 0x80:
			ascii = false
		}
	}
	if ascii {
		return ""
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			// The escapes decode to bytes that are not UTF-8; an encoded U+FFFD is refused too,
			// as the usual sign of a mangled name.
			return "not valid UTF-8"
		case unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
			return "control or invisible formatting character"
		case separatorLookalike(r):
			return "character that an upstream may read as \"/\", \"\\\" or \".\""
		}
	}
	return ""
}

// separatorLookalike reports whether NFKC normalisation or a Windows best-fit code page maps r to
// '/', '\' or '.' (or to ".." and "..."), so that an upstream which normalises could see a segment
// separator or a dot segment that warden never saw.
func separatorLookalike(r rune) bool {
	switch r {
	case '\uFF0F', // FULLWIDTH SOLIDUS
		'\u2215', // DIVISION SLASH
		'\u2044', // FRACTION SLASH
		'\u29F8', // BIG SOLIDUS
		'\uFF3C', // FULLWIDTH REVERSE SOLIDUS
		'\uFE68', // SMALL REVERSE SOLIDUS
		'\u2216', // SET MINUS
		'\u29F9', // BIG REVERSE SOLIDUS
		'\u00A5', // YEN SIGN: '\' in the Japanese code page 932
		'\u20A9', // WON SIGN: '\' in the Korean code page 949
		'\uFF0E', // FULLWIDTH FULL STOP
		'\uFE52', // SMALL FULL STOP
		'\u2024', // ONE DOT LEADER
		'\u2025', // TWO DOT LEADER
		'\u2026': // HORIZONTAL ELLIPSIS
		return true
	}
	return false
}

// escapedLen is the length of url.PathEscape(seg). It knows PathEscape's rules: letters, digits and
// - _ . ~ $ & + : = @ are left as they are, and every other byte becomes %XX.
func escapedLen(seg string) int {
	n := len(seg)
	for i := 0; i < len(seg); i++ {
		switch c := seg[i]; {
		case isAlnum(c):
		case c == '-', c == '_', c == '.', c == '~', c == '$', c == '&', c == '+', c == ':', c == '=', c == '@':
		default:
			n += 2
		}
	}
	return n
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// escape returns the canonical escaped form of p, which parseRequestPath made from raw: each
// segment escaped with url.PathEscape. Since every segment passed parseRequestPath, the result
// decodes back to the same segments, and it is what the gateway forwards.
func (p requestPath) escape(raw string) string {
	if p.canonical {
		return raw
	}
	var b strings.Builder
	for _, seg := range p.segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(seg))
	}
	if p.trailing {
		b.WriteByte('/')
	}
	return b.String()
}
