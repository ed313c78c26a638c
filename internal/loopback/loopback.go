// Package loopback is warden's one definition of "this machine" for what listens on loopback:
// the Host and Origin checks that keep a web page — by DNS rebinding or a cross-site request —
// from driving a local listener, shared by the MCP gateway and `warden connect`.
package loopback

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Host reports whether a host or host:port — a Host header, a listener's address — is this
// machine: "localhost" or a loopback IP literal (127.0.0.0/8, ::1), with or without a port.
// It is the Go MCP SDK's DNS-rebinding rule, which guards warden's /mcp, so that the SDK and
// warden's own paths (the lean relay, the sidecar) draw the line in the same place.
func Host(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = strings.Trim(hostport, "[]")
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Origin reports whether an Origin header value is a page of this machine: http or https, a
// host that Host accepts, an optional port, and nothing else. "null" (a sandboxed frame, a
// file) is not.
func Origin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Opaque != "" || u.User != nil ||
		u.Host == "" || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return false
	}
	return Host(u.Host)
}

// Errors of Check, for the caller's log; the message is safe to answer with.
var (
	ErrHost      = errors.New("the Host header does not name this machine (127.0.0.1, [::1] or localhost)")
	ErrOrigin    = errors.New("the request comes from a web page that is not on this machine")
	ErrCrossSite = errors.New("the request is a browser's cross-site request")
)

// Check returns why a request to a loopback listener that acts without authentication must be
// refused, or nil: a Host that is not this machine (DNS rebinding), an Origin that is not this
// machine, or — when a browser sent no Origin, as on a GET — a Sec-Fetch-Site of cross-site.
// A request without Origin and Sec-Fetch-Site (not a browser's) needs only the Host.
func Check(r *http.Request) error {
	if !Host(r.Host) {
		return ErrHost
	}
	if origins := r.Header.Values("Origin"); len(origins) > 0 {
		for _, o := range origins {
			if !Origin(o) {
				return ErrOrigin
			}
		}
		return nil
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return ErrCrossSite
	}
	return nil
}
