package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Target is where a connection wants to go, after validation: a lower-case host name without
// a trailing dot, or an IP literal.
type Target struct {
	Host string
	Port int
	IP   netip.Addr // set for an IP literal
}

// Literal reports whether the target is an IP literal.
func (t Target) Literal() bool { return t.IP.IsValid() }

// Resource is the policy resource of the target, "host:port" ("[v6]:port" for IPv6).
func (t Target) Resource() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// ParseTarget validates "host:port" from a CONNECT line or a URL. It refuses what a resolver
// might read differently from policy: numeric forms that are IP addresses to some resolvers
// (127.1, 0x7f.1, 2130706433), zones, and anything but letters, digits, '-' and '_'.
func ParseTarget(hostport string, defaultPort int) (Target, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		if defaultPort == 0 {
			return Target{}, fmt.Errorf("%q is not host:port", hostport)
		}
		host, portStr = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), strconv.Itoa(defaultPort)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 || portStr[0] == '0' {
		return Target{}, fmt.Errorf("port %q is invalid", portStr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return Target{}, errors.New("IP addresses with a zone are refused")
		}
		ip = ip.Unmap()
		return Target{Host: ip.String(), Port: port, IP: ip}, nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if err := checkName(name); err != nil {
		return Target{}, err
	}
	return Target{Host: name, Port: port}, nil
}

func checkName(name string) error {
	if name == "" || len(name) > 253 {
		return errors.New("the host name is empty or too long")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host name %q is malformed", name)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host name %q has a character other than letters, digits, '-' and '_' (use punycode for international names)", name)
			}
		}
	}
	// No top-level domain is numeric: a name ending in a number is an address in disguise.
	if _, err := strconv.ParseUint(labels[len(labels)-1], 0, 64); err != nil {
		return nil
	}
	return fmt.Errorf("host name %q looks like a numeric address; IP addresses must be written as literals", name)
}

// refused are the ranges the proxy never dials: this machine, private networks, link-local
// (with the cloud metadata address 169.254.169.254), carrier-grade NAT, unique-local IPv6,
// documentation, benchmarking, multicast, reserved, and the IPv6 forms that embed an IPv4
// address (NAT64, 6to4, Teredo), which could smuggle any of the others.
var refused = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
		"192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
		"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/96", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
		"2001:db8::/32", "2002::/16", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Refused reports whether ip lies in a range the proxy never dials, and which.
func Refused(ip netip.Addr) (netip.Prefix, bool) {
	ip = ip.Unmap()
	for _, p := range refused {
		if p.Contains(ip) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// HostPattern is an --allow-host entry: a host name, "*.domain" (any name below domain, never
// domain itself), or an IP literal; with an optional port (any port when absent).
type HostPattern struct {
	Host string // lower case; "*.example.com" for a wildcard
	Port int    // 0: any
}

// ParseHostPattern parses HOST[:PORT].
func ParseHostPattern(s string) (HostPattern, error) {
	host, port := s, 0
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return HostPattern{}, fmt.Errorf("%q: port %q is invalid", s, p)
		}
		host, port = h, n
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return HostPattern{Host: ip.Unmap().String(), Port: port}, nil
	}
	rest, wild := strings.CutPrefix(host, "*.")
	if err := checkName(rest); err != nil || strings.Contains(rest, "*") {
		return HostPattern{}, fmt.Errorf("%q: want a host name, *.domain or an IP address, optionally with :PORT", s)
	}
	if wild {
		return HostPattern{Host: "*." + rest, Port: port}, nil
	}
	return HostPattern{Host: rest, Port: port}, nil
}

// Match reports whether the pattern admits t. "*.github.com" matches api.github.com and
// a.b.github.com, not github.com or evilgithub.com.
func (p HostPattern) Match(t Target) bool {
	if p.Port != 0 && p.Port != t.Port {
		return false
	}
	if suffix, ok := strings.CutPrefix(p.Host, "*"); ok {
		return !t.Literal() && strings.HasSuffix(t.Host, suffix) && len(t.Host) > len(suffix)
	}
	return p.Host == t.Host
}

func (p HostPattern) String() string {
	if p.Port == 0 {
		return p.Host
	}
	return net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
}
