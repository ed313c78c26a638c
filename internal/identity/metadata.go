package identity

import "strings"

// Paths of the OAuth endpoints, relative to the server's base URL. The HTTP API serves them
// here and Metadata advertises them, so the two cannot disagree.
const (
	TokenPath         = "/oauth2/token"
	IntrospectionPath = "/oauth2/introspect"
	RevocationPath    = "/oauth2/revoke"
	JWKSPath          = "/.well-known/jwks.json"
	MetadataPath      = "/.well-known/oauth-authorization-server"
)

// Grant types and client authentication methods warden supports.
const (
	GrantClientCredentials = "client_credentials"
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange"
	AuthClientSecretBasic  = "client_secret_basic"
	AuthClientSecretPost   = "client_secret_post"
)

// ServerMetadata is the OAuth 2.0 authorization server metadata of RFC 8414.
type ServerMetadata struct {
	Issuer                                    string   `json:"issuer"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
}

// Metadata returns the authorization server metadata (a *ServerMetadata) with endpoints under
// baseURL, the URL clients reach this server at; empty means the issuer. The issuer field is
// always Config.Issuer, since clients compare it with the iss of tokens.
func (s *Service) Metadata(baseURL string) any {
	if baseURL == "" {
		baseURL = s.cfg.Issuer
	}
	base := strings.TrimRight(baseURL, "/")
	clientAuth := []string{AuthClientSecretBasic, AuthClientSecretPost}
	return &ServerMetadata{
		Issuer:                            s.cfg.Issuer,
		TokenEndpoint:                     base + TokenPath,
		JWKSURI:                           base + JWKSPath,
		IntrospectionEndpoint:             base + IntrospectionPath,
		RevocationEndpoint:                base + RevocationPath,
		GrantTypesSupported:               []string{GrantClientCredentials, GrantTokenExchange},
		ResponseTypesSupported:            []string{}, // required by RFC 8414; no authorization endpoint, so none
		TokenEndpointAuthMethodsSupported: clientAuth,
		IntrospectionEndpointAuthMethodsSupported: clientAuth,
		RevocationEndpointAuthMethodsSupported:    clientAuth,
	}
}
