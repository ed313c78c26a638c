package oauthas

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wardenhq/warden"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client whose
// client_id is an https URL publishes its metadata there; warden fetches it instead of asking
// the client to register. Fetching a URL a stranger names is a server-side request: it goes
// only to public addresses (Config.MetadataPrivateHosts lists the exceptions), without
// redirects or proxies, within a size and a time limit, and what was fetched is cached.
const (
	maxMetadataDoc     = 64 << 10
	metadataTimeout    = 5 * time.Second
	metadataCacheTTL   = 10 * time.Minute
	maxMetadataEntries = 1000
)

// clientMetadataDoc is what warden reads of a client ID metadata document.
type clientMetadataDoc struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
}

type cachedClient struct {
	client  *warden.OAuthClient
	expires time.Time
}

type metadataFetcher struct {
	once   sync.Once
	client *http.Client
	mu     sync.Mutex
	cache  map[string]cachedClient
}

// isMetadataURL reports whether a client_id names a metadata document: an https URL with a
// path, no fragment and no user info.
func isMetadataURL(id string) bool {
	if !strings.HasPrefix(id, "https://") || len(id) > maxParam {
		return false
	}
	u, err := url.Parse(id)
	return err == nil && u.Host != "" && u.Path != "" && u.Path != "/" && u.Fragment == "" && u.User == nil && !strings.Contains(id, "#")
}

// publicIP reports whether ip is an address on the internet: not loopback, private (RFC 1918,
// fc00::/7), link-local, CGNAT, unspecified or multicast.
func publicIP(ip net.IP) bool {
	if ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	if v4 := ip.To4(); v4 != nil && (v4[0] == 100 && v4[1]&0xc0 == 64 || v4[0] == 0) {
		return false
	}
	return true
}

func (s *Server) metadataHTTP() *http.Client {
	s.metadata.once.Do(func() {
		guarded := &net.Dialer{Timeout: metadataTimeout, Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil || !publicIP(net.ParseIP(host)) {
				return fmt.Errorf("refusing to fetch client metadata from the non-public address %s", host)
			}
			return nil
		}}
		plain := &net.Dialer{Timeout: metadataTimeout}
		tlsConfig := s.MetadataTLS
		if tlsConfig == nil {
			tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		s.metadata.client = &http.Client{
			Timeout: metadataTimeout,
			Transport: &http.Transport{
				Proxy: nil, // never through a proxy: the address checked is the one dialled
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					host, _, _ := net.SplitHostPort(addr)
					if slices.Contains(s.cfg.MetadataPrivateHosts, host) {
						return plain.DialContext(ctx, network, addr)
					}
					return guarded.DialContext(ctx, network, addr)
				},
				TLSClientConfig:        tlsConfig,
				ResponseHeaderTimeout:  metadataTimeout,
				MaxResponseHeaderBytes: 16 << 10,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	})
	return s.metadata.client
}

// metadataClient returns the client a metadata document at id describes, from the cache or
// fetched now.
func (s *Server) metadataClient(ctx context.Context, id string) (*warden.OAuthClient, error) {
	now := s.now()
	s.metadata.mu.Lock()
	if e, ok := s.metadata.cache[id]; ok && now.Before(e.expires) {
		s.metadata.mu.Unlock()
		return e.client, nil
	}
	s.metadata.mu.Unlock()

	c, err := s.fetchMetadata(ctx, id)
	if err != nil {
		return nil, err
	}
	s.metadata.mu.Lock()
	defer s.metadata.mu.Unlock()
	if s.metadata.cache == nil {
		s.metadata.cache = map[string]cachedClient{}
	}
	if len(s.metadata.cache) >= maxMetadataEntries {
		for k, e := range s.metadata.cache {
			if !now.Before(e.expires) || len(s.metadata.cache) >= maxMetadataEntries {
				delete(s.metadata.cache, k)
			}
		}
	}
	s.metadata.cache[id] = cachedClient{client: c, expires: now.Add(metadataCacheTTL)}
	return c, nil
}

func (s *Server) fetchMetadata(ctx context.Context, id string) (*warden.OAuthClient, error) {
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.metadataHTTP().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("client metadata document: HTTP %d (redirects are not followed)", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataDoc+1))
	if err != nil {
		return nil, err
	}
	return parseMetadataDoc(id, body)
}

// parseMetadataDoc checks a fetched document: one JSON object within the size limit whose
// client_id is the URL it came from, with valid redirect URIs and no client authentication.
func parseMetadataDoc(id string, body []byte) (*warden.OAuthClient, error) {
	if len(body) > maxMetadataDoc {
		return nil, errors.New("client metadata document too large")
	}
	var doc clientMetadataDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("client metadata document is not a JSON object of client metadata")
	}
	if doc.ClientID != id {
		return nil, errors.New("client metadata document names another client_id")
	}
	if len(doc.RedirectURIs) == 0 || len(doc.RedirectURIs) > maxRedirects {
		return nil, errors.New("client metadata document must list 1 to 10 redirect_uris")
	}
	for _, u := range doc.RedirectURIs {
		if err := validRedirect(u); err != nil {
			return nil, err
		}
	}
	if doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != "none" {
		return nil, errors.New("client metadata document: only public clients (token_endpoint_auth_method none)")
	}
	name := doc.ClientName
	if len([]rune(name)) > maxClientName || safe(name) != name {
		return nil, errors.New("client metadata document: client_name must be at most 100 printable characters")
	}
	if name == "" {
		name = id
	}
	return &warden.OAuthClient{ID: id, Name: name, RedirectURIs: doc.RedirectURIs}, nil
}
