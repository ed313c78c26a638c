package identity

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/fleet"
	"github.com/wardenhq/warden/internal/seal"
)

// algEdDSA is the only algorithm warden signs with and the only one VerifyToken accepts.
const algEdDSA = "EdDSA"

// keyring is one immutable view of the signing keys; a reload replaces it whole.
type keyring struct {
	signer     jose.Signer // nil when no key signs: Issue fails closed
	signingKID string
	verify     map[string]*verifyKey
	// headers maps the encoded protected header that warden's own signer writes for a key
	// ({"alg":"EdDSA","kid":…,"typ":"at+jwt"}) to that key: a token whose first segment is one
	// of these needs no header parsing, since alg, typ, kid and the absence of crit are known.
	headers map[string]*verifyKey
}

// encodedHeader is the first segment of the tokens warden signs with kid.
func encodedHeader(kid string) string {
	b, _ := json.Marshal(kid) // a string always marshals
	return strictBase64.EncodeToString([]byte(`{"alg":"` + algEdDSA + `","kid":` + string(b) + `,"typ":"` + tokenType + `"}`))
}

type verifyKey struct {
	kid       string
	public    ed25519.PublicKey
	createdAt time.Time
	retiredAt time.Time
}

// verifiesAt reports whether tokens signed by k are still acceptable at now.
func (k *verifyKey) verifiesAt(now time.Time, window time.Duration) bool {
	return k.retiredAt.IsZero() || now.Before(k.retiredAt.Add(window))
}

// loadKeys reads the keys from the store and swaps in a new keyring. Only the signing key is
// decrypted; the others only verify. With create, a store where no key signs gets a new one.
func (s *Service) loadKeys(ctx context.Context, create bool) error {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("identity: load signing keys: %w", err)
	}
	if create && currentKey(keys) == nil {
		if _, err := s.createKey(ctx); err != nil {
			return err
		}
		if keys, err = s.store.SigningKeys(ctx); err != nil {
			return fmt.Errorf("identity: load signing keys: %w", err)
		}
	}
	kr, err := s.buildKeyring(keys, s.keys.Load())
	if err != nil {
		return err
	}
	s.keys.Store(kr)
	return nil
}

// currentKey is the newest key that has not retired. The store retires the others when it
// creates a key, but two replicas starting on an empty store can race; the newest wins.
func currentKey(keys []*warden.SigningKey) *warden.SigningKey {
	for _, k := range slices.Backward(keys) {
		if k.RetiredAt.IsZero() {
			return k
		}
	}
	return nil
}

func (s *Service) buildKeyring(keys []*warden.SigningKey, prev *keyring) (*keyring, error) {
	kr := &keyring{verify: make(map[string]*verifyKey, len(keys)), headers: make(map[string]*verifyKey, len(keys))}
	for _, k := range keys {
		if k.Algorithm != algEdDSA || len(k.Public) != ed25519.PublicKeySize {
			// Fail closed on a key this version cannot use rather than refuse to start.
			s.log.Error("ignoring signing key of unknown type", "kid", k.ID, "alg", k.Algorithm)
			continue
		}
		vk := &verifyKey{kid: k.ID, public: ed25519.PublicKey(k.Public), createdAt: k.CreatedAt, retiredAt: k.RetiredAt}
		kr.verify[k.ID] = vk
		kr.headers[encodedHeader(k.ID)] = vk
	}
	cur := currentKey(keys)
	switch {
	case cur == nil:
		s.log.Error("no signing key is current: tokens cannot be issued until keys are rotated")
	case kr.verify[cur.ID] == nil:
		return nil, fmt.Errorf("identity: current signing key %s has unknown type %q", cur.ID, cur.Algorithm)
	case prev != nil && prev.signingKID == cur.ID && prev.signer != nil:
		kr.signer, kr.signingKID = prev.signer, prev.signingKID
	default:
		signer, err := s.openSigner(cur)
		if err != nil {
			return nil, err
		}
		kr.signer, kr.signingKID = signer, cur.ID
	}
	return kr, nil
}

func (s *Service) openSigner(k *warden.SigningKey) (jose.Signer, error) {
	seed, err := seal.Open(s.masterKey, k.Sealed, []byte(k.ID))
	if errors.Is(err, seal.ErrOpen) {
		return nil, fmt.Errorf("identity: cannot decrypt signing key %s: is this the master key the store was created with?", k.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("identity: signing key %s: %w", k.ID, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("identity: signing key %s has a %d-byte seed", k.ID, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(k.Public)) {
		return nil, fmt.Errorf("identity: signing key %s does not match its public key", k.ID)
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: k.ID}},
		(&jose.SignerOptions{}).WithType(tokenType),
	)
	if err != nil {
		return nil, fmt.Errorf("identity: signing key %s: %w", k.ID, err)
	}
	return signer, nil
}

// createKey stores a new signing key; the store retires the one that signed before.
func (s *Service) createKey(ctx context.Context) (*warden.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity: generate signing key: %w", err)
	}
	kid := warden.NewID("key_")
	sealed, err := seal.Seal(s.masterKey, priv.Seed(), []byte(kid))
	if err != nil {
		return nil, fmt.Errorf("identity: seal signing key: %w", err)
	}
	k := &warden.SigningKey{ID: kid, Algorithm: algEdDSA, Public: pub, Sealed: sealed, CreatedAt: s.cfg.Clock.Now().UTC()}
	if err := s.store.CreateSigningKey(ctx, k); err != nil {
		return nil, fmt.Errorf("identity: store signing key: %w", err)
	}
	s.log.Info("created signing key", "kid", kid)
	return k, nil
}

// RotateKeys makes a new key sign from now on. The previous keys keep verifying until the last
// token they signed has expired (MaxTokenTTL+ClockSkew after retirement); other replicas start
// to accept the new key when they hear the fleet's announcement (or at their next refresh).
func (s *Service) RotateKeys(ctx context.Context) (*warden.SigningKey, error) {
	s.keysMu.Lock()
	k, err := s.createKey(ctx)
	s.keysMu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := s.loadKeys(ctx, false); err != nil {
		return nil, err
	}
	s.announce(ctx, fleet.TopicKey, k.ID)
	pub := *k
	pub.Sealed = nil
	return &pub, nil
}

// JWKS returns the public JWK set (RFC 7517) of every key that still verifies, oldest first.
func (s *Service) JWKS() []byte {
	kr := s.keys.Load()
	now := s.cfg.Clock.Now()
	keys := make([]*verifyKey, 0, len(kr.verify))
	for _, k := range kr.verify {
		if k.verifiesAt(now, s.keyVerifyWindow()) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b *verifyKey) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return cmp.Compare(a.kid, b.kid)
	})
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.public, KeyID: k.kid, Algorithm: algEdDSA, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		// Marshalling Ed25519 public keys cannot fail; an empty set fails closed if it ever does.
		s.log.Error("marshal JWKS", "err", err)
		return []byte(`{"keys":[]}`)
	}
	return b
}
