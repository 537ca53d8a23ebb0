package auth

import (
	"fmt"
	"net/http"
	"net/url"
)

// Require admits to a page only a principal with role: an anonymous visitor is sent to
// /login?next=<this page> (303), a weaker one gets 403. Authenticate must run before it.
func (s *Service) Require(role Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			switch {
			case !ok && stateFrom(r.Context()).failure == "unavailable":
				textError(w, http.StatusServiceUnavailable, "Logins cannot be checked right now; try again shortly.")
			case !ok:
				http.Redirect(w, r, LoginPath(loginNext(r)), http.StatusSeeOther)
			case !p.Role.Can(role):
				textError(w, http.StatusForbidden, fmt.Sprintf("Forbidden: this needs the %s role; %s is %s.", role, p.Name, p.Role))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// RequireAPI admits to the API only a principal with role: 401 (with WWW-Authenticate) for an
// anonymous client, 403 for a weaker one, as JSON errors. Authenticate must run before it.
func (s *Service) RequireAPI(role Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			failure := stateFrom(r.Context()).failure
			switch {
			case !ok && failure == "unavailable":
				writeError(w, http.StatusServiceUnavailable, "unavailable", "credentials cannot be checked right now, retry later")
			case !ok:
				challenge := `Bearer realm="slipway"`
				msg := "a valid API token or session is required"
				if failure == "invalid_token" {
					challenge += `, error="invalid_token"`
					msg = "the API token is unknown, expired or revoked"
				}
				w.Header().Set("WWW-Authenticate", challenge)
				writeError(w, http.StatusUnauthorized, "unauthenticated", msg)
			case !p.Role.Can(role):
				writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("this needs the %s role; %s is %s", role, p.Name, p.Role))
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// LoginPath is the login page's URL that returns to next (a local path) afterwards.
func LoginPath(next string) string {
	if next = SafeNext(next); next == "/" {
		return "/login"
	}
	return "/login?next=" + url.QueryEscape(next)
}

// loginNext is where to come back to after logging in: the page asked for, when reading it; after
// a refused form (a POST) the page it was on would be a guess, so the start page.
func loginNext(r *http.Request) string {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return "/"
	}
	return r.URL.RequestURI()
}

// SafeNext returns next when it is a path on this server ("/x", not "//host" nor "/\host", which
// browsers read as another host), else "/".
func SafeNext(next string) string {
	if len(next) == 0 || len(next) > 2048 || next[0] != '/' {
		return "/"
	}
	if len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	for _, c := range []byte(next) {
		// Browsers drop tabs and newlines from URLs ("/\t/host" is "//host") and read '\' as '/'.
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

func textError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(msg + "\n"))
}
