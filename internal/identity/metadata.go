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
	AuthorizationEndpoint                     string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	RegistrationEndpoint                      string   `json:"registration_endpoint,omitempty"`
	JWKSURI                                   string   `json:"jwks_uri"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	// Set by internal/oauthas when it serves the authorization code flow.
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported,omitempty"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported,omitempty"`
	ClientIDMetadataDocumentSupported          bool     `json:"client_id_metadata_document_supported,omitempty"`
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
		ResponseTypesSupported:            []string{}, // required by RFC 8414; none unless internal/oauthas extends this
		TokenEndpointAuthMethodsSupported: clientAuth,
		IntrospectionEndpointAuthMethodsSupported: clientAuth,
		RevocationEndpointAuthMethodsSupported:    clientAuth,
	}
}
