package people

import (
	"net/http"

	"github.com/wardenhq/warden"
)

// BrowserSession returns the browser's session (the warden_session cookie) when it is live, or
// nil and no error when there is none. The web console (internal/console) keys its CSRF tokens
// and idle timeout on the session's hash and creation time.
func (s *Service) BrowserSession(r *http.Request) (*warden.PersonSession, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	ps, err := s.session(r.Context(), c.Value, warden.SessionBrowser)
	if warden.ErrorCode(err) == warden.EUnauthenticated {
		return nil, nil
	}
	return ps, err
}

// EndBrowserSession ends the browser's session, if it has one (a person.sign_out event), and
// clears its cookie: the console's sign-out and idle timeout.
func (s *Service) EndBrowserSession(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(CookieName); err == nil && c.Value != "" {
		if err := s.logout(r.Context(), r, c.Value); err != nil && warden.ErrorCode(err) != warden.EUnauthenticated {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	return nil
}

// SingleSignOn reports whether people sign in through an OIDC provider (people.oidc is set),
// and names it.
func (s *Service) SingleSignOn() (issuer string, ok bool) {
	if s.opt.OIDC == nil {
		return "", false
	}
	return s.opt.OIDC.Issuer, true
}

// BreakGlass reports whether people may sign in with an admin token.
func (s *Service) BreakGlass() bool { return s.opt.Admin != nil }
