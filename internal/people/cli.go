package people

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/apitype"
	"github.com/wardenhq/warden/internal/identity"
	"golang.org/x/oauth2"
)

// deviceFlow is a device code's state: waiting, or confirmed by a person in a browser.
type deviceFlow struct {
	UserCodeHash []byte            `json:"user_code_hash"`
	Status       string            `json:"status"` // pending, approved, denied
	Person       *warden.Principal `json:"person,omitempty"`
}

// userCodeFlow leads from a user code to its device code.
type userCodeFlow struct {
	DeviceHash []byte `json:"device_hash"`
}

// userCodeAlphabet has no vowels (no words) and no look-alikes (RFC 8628 section 6.1).
const userCodeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"

// ExchangeCode is POST /login/cli/token: the loopback flow's one-time code and the PKCE
// verifier that meets its challenge give a CLI session. A code is used once.
func (s *Service) ExchangeCode(ctx context.Context, r *http.Request, req apitype.LoginCodeRequest) (*apitype.LoginSession, error) {
	if !token64(req.Code, 16, 128) || !token64(req.CodeVerifier, 43, 128) {
		return nil, warden.Errorf(warden.EInvalid, "code and code_verifier are required")
	}
	var in signedIn
	err := s.takeFlow(ctx, flowCLICode, req.Code, &in)
	if warden.ErrorCode(err) == warden.ENotFound {
		return nil, warden.Errorf(warden.EUnauthenticated, "the sign-in code is unknown, used or expired: run warden login again")
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(oauth2.S256ChallengeFromVerifier(req.CodeVerifier)), []byte(in.Challenge)) != 1 {
		_ = s.record(ctx, r, warden.EventPersonSignInRefused, &in.Person, in.Via, warden.SessionCLI, "the code verifier does not meet the code's challenge")
		return nil, warden.Errorf(warden.EUnauthenticated, "the code verifier does not match: run warden login again")
	}
	return s.cliSession(ctx, r, &in.Person, in.Via)
}

// cliSession starts a CLI session for p and records the sign-in first.
func (s *Service) cliSession(ctx context.Context, r *http.Request, p *warden.Principal, via string) (*apitype.LoginSession, error) {
	token, ps, err := s.newSession(ctx, p, warden.SessionCLI, via)
	if err != nil {
		return nil, err
	}
	if err := s.record(ctx, r, warden.EventPersonSignIn, p, via, warden.SessionCLI, ""); err != nil {
		_ = s.opt.Store.RevokePersonSession(ctx, ps.Hash, s.opt.Clock.Now())
		return nil, err
	}
	return &apitype.LoginSession{Token: token, ExpiresAt: ps.ExpiresAt, Name: p.Name, Email: p.Email, Role: string(p.Role)}, nil
}

// StartDevice is POST /login/device/code: a device code for a CLI without a browser, and the
// user code a person confirms at /login/device.
func (s *Service) StartDevice(ctx context.Context) (*apitype.DeviceCode, error) {
	device := randomString(32)
	b := make([]byte, 0, 8)
	for len(b) < 8 {
		for _, r := range randomBytes(16) {
			// 240 is the largest multiple of 20 under 256: no letter more likely than another.
			if r < 240 && len(b) < 8 {
				b = append(b, userCodeAlphabet[int(r)%len(userCodeAlphabet)])
			}
		}
	}
	user := string(b[:4]) + "-" + string(b[4:])
	if err := s.createFlow(ctx, flowDevice, device, deviceTTL, deviceFlow{UserCodeHash: identity.HashSecret(normalUserCode(user)), Status: "pending"}); err != nil {
		return nil, err
	}
	if err := s.createFlow(ctx, flowUserCode, normalUserCode(user), deviceTTL, userCodeFlow{DeviceHash: identity.HashSecret(device)}); err != nil {
		return nil, err
	}
	verify := s.opt.PublicURL + "/login/device"
	return &apitype.DeviceCode{DeviceCode: device, UserCode: user, VerificationURI: verify,
		VerificationURIComplete: verify + "?user_code=" + url.QueryEscape(user),
		ExpiresIn:               int(deviceTTL.Seconds()), Interval: int(DevicePollInterval.Seconds())}, nil
}

// PollDevice is POST /login/device/token: pending until a person confirms the user code; then
// the session, once.
func (s *Service) PollDevice(ctx context.Context, r *http.Request, req apitype.DeviceTokenRequest) (*apitype.DeviceToken, error) {
	if !token64(req.DeviceCode, 16, 128) {
		return nil, warden.Errorf(warden.EInvalid, "device_code is required")
	}
	var d deviceFlow
	err := s.getFlow(ctx, flowDevice, req.DeviceCode, &d)
	if warden.ErrorCode(err) == warden.ENotFound {
		return nil, warden.Errorf(warden.ENotFound, "the device code is unknown, used or expired: run warden login again")
	}
	if err != nil {
		return nil, err
	}
	switch d.Status {
	case "pending":
		return &apitype.DeviceToken{Status: "pending", Interval: int(DevicePollInterval.Seconds())}, nil
	case "denied":
		_, _ = s.opt.Store.TakeSignInFlow(ctx, identity.HashSecret(req.DeviceCode), flowDevice, s.opt.Clock.Now())
		return nil, warden.Errorf(warden.EForbidden, "the sign-in was refused in the browser")
	}
	// Approved: whoever takes the step gets the session, once.
	if err := s.takeFlow(ctx, flowDevice, req.DeviceCode, &d); err != nil {
		return nil, warden.Errorf(warden.ENotFound, "the device code is unknown, used or expired: run warden login again")
	}
	if d.Status != "approved" || d.Person == nil {
		return nil, warden.Errorf(warden.ENotFound, "the device code is unknown, used or expired: run warden login again")
	}
	sess, err := s.cliSession(ctx, r, d.Person, viaDevice)
	if err != nil {
		return nil, err
	}
	return &apitype.DeviceToken{Status: "approved", Session: sess}, nil
}

// DevicePage is GET /login/device: a signed-in person confirms the user code the CLI shows;
// anyone else signs in first and comes back.
func (s *Service) DevicePage(w http.ResponseWriter, r *http.Request) {
	person, err := s.Person(r)
	if err != nil {
		s.renderError(w, err)
		return
	}
	code := r.URL.Query().Get("user_code")
	if len(code) > 16 {
		code = ""
	}
	if person == nil {
		back := "/login/device"
		if code != "" {
			back += "?user_code=" + url.QueryEscape(code)
		}
		http.Redirect(w, r, s.SignInURL(back), http.StatusSeeOther)
		return
	}
	if code == "" {
		code = "XXXX-XXXX"
	}
	s.render(w, http.StatusOK, pageData{Title: "Sign in the warden CLI", Person: person, UserCode: code})
}

// ConfirmDevice is POST /login/device: the signed-in person approves or refuses the user code.
// The CLI gets a session of this person, with this person's role.
func (s *Service) ConfirmDevice(w http.ResponseWriter, r *http.Request) {
	person, err := s.Person(r)
	if err != nil {
		s.renderError(w, err)
		return
	}
	if person == nil {
		s.renderError(w, warden.Errorf(warden.EUnauthenticated, "sign in first at /login/device"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, warden.Errorf(warden.EInvalid, "the form cannot be read"))
		return
	}
	ctx := r.Context()
	user := normalUserCode(r.PostForm.Get("user_code"))
	var uc userCodeFlow
	if len(user) != 8 {
		s.renderError(w, warden.Errorf(warden.EInvalid, "the code is 8 letters, as warden login shows it"))
		return
	}
	// The user code is used once, whatever the decision.
	if err := s.takeFlow(ctx, flowUserCode, user, &uc); err != nil {
		if warden.ErrorCode(err) == warden.ENotFound {
			err = warden.Errorf(warden.ENotFound, "no sign-in waits for this code: check it, or run warden login again")
		}
		s.renderError(w, err)
		return
	}
	f, err := s.opt.Store.SignInFlow(ctx, uc.DeviceHash, flowDevice, s.opt.Clock.Now())
	var d deviceFlow
	if err == nil {
		err = json.Unmarshal(f.Data, &d)
	}
	if err != nil {
		s.renderError(w, err)
		return
	}
	d.Status, d.Person = "denied", nil
	if r.PostForm.Get("decision") == "approve" {
		d.Status, d.Person = "approved", person
	}
	data, _ := json.Marshal(d)
	if err := s.opt.Store.UpdateSignInFlow(ctx, uc.DeviceHash, flowDevice, data, s.opt.Clock.Now()); err != nil {
		s.renderError(w, err)
		return
	}
	msg := "The CLI is signed in as " + person.Name + ". You can close this page."
	if d.Status == "denied" {
		msg = "The CLI's sign-in was refused."
		if err := s.record(ctx, r, warden.EventPersonSignInRefused, person, viaDevice, warden.SessionCLI, "the person refused the device code in the browser"); err != nil {
			s.renderError(w, err)
			return
		}
	}
	s.render(w, http.StatusOK, pageData{Title: "warden CLI", Message: msg})
}

// normalUserCode is the user code without separators, in capitals.
func normalUserCode(s string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(s)))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	cryptoRead(b)
	return b
}
