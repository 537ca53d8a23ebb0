package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway-dev/slipway/internal/auth/password"
	"github.com/slipway-dev/slipway/internal/store"
)

// HashPassword returns the argon2id hash (PHC string) of pw for auth.users[].password_hash.
func HashPassword(pw string) (string, error) { return password.Hash(pw) }

// MountLogin mounts the browser's login routes on r (which runs Authenticate): GET and POST
// /login, POST /logout, and, when single sign-on is configured, GET /auth/oidc/login and
// /auth/oidc/callback. All of them are for anonymous visitors (logout excepted, which needs none).
func (s *Service) MountLogin(r chi.Router, render LoginRenderer) {
	r.Method(http.MethodGet, "/login", s.LoginHandler(render))
	r.Method(http.MethodPost, "/login", s.LoginHandler(render))
	r.Method(http.MethodPost, "/logout", s.LogoutHandler())
	if s.oidc != nil {
		r.Method(http.MethodGet, OIDCLoginPath, s.OIDCLoginHandler(render))
		r.Method(http.MethodGet, OIDCCallbackPath, s.OIDCCallbackHandler(render))
	}
}

// maxFormBytes bounds a login form: two fields and a path.
const maxFormBytes = 16 << 10

// LoginHandler serves /login: GET draws the form (render), POST (username, password, next) checks
// the password, opens a session, sets its cookie and sends the browser to next (a local path
// only). Failures are counted per client address and per user name; past the allowance the form
// answers 429 without checking anything.
func (s *Service) LoginHandler(render LoginRenderer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		page := LoginPage{OIDC: s.oidc != nil}
		if s.oidc != nil {
			page.OIDCName = s.oidc.name
		}
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			page.Next = SafeNext(r.URL.Query().Get("next"))
			if e := r.URL.Query().Get("error"); e != "" {
				page.Error = loginErrors[e] // only our own words, never the query's
			}
			render(w, r, http.StatusOK, page)
		case http.MethodPost:
			s.passwordLogin(w, r, render, page)
		default:
			w.Header().Set("Allow", "GET, HEAD, POST")
			textError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		}
	})
}

// loginErrors are the messages a redirect to /login?error=<key> may show.
var loginErrors = map[string]string{
	"expired": "Your session has ended; log in again.",
}

func (s *Service) passwordLogin(w http.ResponseWriter, r *http.Request, render LoginRenderer, page LoginPage) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		page.Error = "The form could not be read."
		render(w, r, http.StatusBadRequest, page)
		return
	}
	name, pw := r.PostForm.Get("username"), r.PostForm.Get("password")
	page.Next = SafeNext(r.PostForm.Get("next"))
	page.Username = truncate(name, 128)
	client := s.clientAddr(r)
	if s.limitedAddr(ctx, client, "login") || s.limitedUser(ctx, name, client) {
		retry := max(s.addrFails.retryAfter(limitKey(client)), s.userFails.retryAfter(userKey(name)))
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		page.Error = fmt.Sprintf("Too many failed logins. Try again in %d seconds.", retry)
		render(w, r, http.StatusTooManyRequests, page)
		return
	}
	role, ok, err := s.checkPassword(ctx, name, pw)
	if err != nil {
		s.log.ErrorContext(ctx, "checking password", "err", err)
		page.Error = "Logins cannot be checked right now; try again shortly."
		render(w, r, http.StatusServiceUnavailable, page)
		return
	}
	if !ok {
		s.addrFails.fail(limitKey(client))
		s.userFails.fail(userKey(name))
		s.log.WarnContext(ctx, "login failed", "username", page.Username, "client_addr", client, "via", ViaPassword)
		s.audit(ctx, Principal{Name: "anonymous", Via: ViaPassword}, client, "login.failed", "",
			map[string]any{"username": page.Username, "reason": "wrong username or password"})
		page.Error = "Wrong username or password."
		render(w, r, http.StatusUnauthorized, page)
		return
	}
	s.loggedIn(w, r, render, page, Principal{Name: name, Role: role, Via: ViaPassword}, client)
}

// loggedIn opens a session for p, whichever way it logged in, and sends the browser on to where
// it was going; the form again, with why, when the session cannot be recorded.
func (s *Service) loggedIn(w http.ResponseWriter, r *http.Request, render LoginRenderer, page LoginPage, p Principal, client string) {
	if err := s.startSession(w, r, p, client); err != nil {
		s.log.ErrorContext(r.Context(), "opening session", "err", err)
		page.Error = "Logins cannot be recorded right now; try again shortly."
		render(w, r, http.StatusServiceUnavailable, page)
		return
	}
	http.Redirect(w, r, page.Next, http.StatusSeeOther)
}

// limitedUser reports whether the user name has no failures left.
func (s *Service) limitedUser(ctx context.Context, name, client string) bool {
	limited, news := s.userFails.limited(userKey(name))
	if news {
		s.log.WarnContext(ctx, "login name rate-limited after failed logins", "username", truncate(name, 128),
			"client_addr", client)
	}
	return limited
}

// checkPassword verifies name's password. An unknown name costs the same hash as a known one, so
// the time taken does not tell which names exist; at most Limits.Verifications run at once.
func (s *Service) checkPassword(ctx context.Context, name, pw string) (Role, bool, error) {
	select {
	case s.verifySem <- struct{}{}:
		defer func() { <-s.verifySem }()
	case <-ctx.Done():
		return RoleNone, false, ctx.Err()
	}
	u, known := s.users[name]
	hash := u.hash
	if !known {
		hash = s.dummyHash
	}
	ok, err := password.Verify(hash, pw)
	if err != nil {
		return RoleNone, false, fmt.Errorf("verifying password hash: %w", err)
	}
	return u.role, ok && known, nil
}

// startSession opens a session for p, sets its cookie, ends the session the browser had (a new
// id at every login: nobody can plant one beforehand) and records the login.
func (s *Service) startSession(w http.ResponseWriter, r *http.Request, p Principal, client string) error {
	ctx := r.Context()
	value, err := randomString(16) // 128 bits
	if err != nil {
		return err
	}
	sess, err := s.st.SessionCreate(ctx, store.Session{ID: hashHex(value), UserName: p.Name, Role: p.Role.String(),
		Via: p.Via, ClientAddr: client, UserAgent: truncate(r.UserAgent(), 256)}, s.ttl)
	if err != nil {
		return err
	}
	if old, err := r.Cookie(s.SessionCookie()); err == nil && validCookieValue(old.Value) {
		if _, err := s.st.SessionRevoke(ctx, hashHex(old.Value)); err != nil && !isNotFound(err) {
			s.log.WarnContext(ctx, "ending the previous session", "err", err)
		}
	}
	http.SetCookie(w, s.sessionCookie(value, int(s.ttl/time.Second)))
	p.SessionID, p.SessionPublicID = sess.ID, sess.PublicID
	s.log.InfoContext(ctx, "login", "user", p.Name, "role", p.Role.String(), "via", p.Via, "client_addr", client,
		"session_id", sess.PublicID)
	s.audit(ctx, p, client, "login", fmt.Sprintf("session:%d", sess.PublicID), map[string]any{"role": p.Role.String()})
	s.purgeSessions(ctx)
	return nil
}

func (s *Service) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: s.SessionCookie(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

// LogoutHandler serves POST /logout: it revokes the session, clears its cookie and sends the
// browser to /login.
func (s *Service) LogoutHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			textError(w, http.StatusMethodNotAllowed, "Log out with POST.")
			return
		}
		ctx := r.Context()
		id := ""
		if p, ok := PrincipalFrom(ctx); ok && p.SessionID != "" {
			id = p.SessionID
		} else if c, err := r.Cookie(s.SessionCookie()); err == nil && validCookieValue(c.Value) {
			id = hashHex(c.Value)
		}
		if id != "" {
			sess, err := s.st.SessionRevoke(ctx, id)
			switch {
			case err == nil:
				p := Principal{Name: sess.UserName, Via: sess.Via}
				if role, err := ParseRole(sess.Role); err == nil {
					p.Role = role
				}
				s.audit(ctx, p, s.clientAddr(r), "logout", fmt.Sprintf("session:%d", sess.PublicID), nil)
			case !isNotFound(err):
				s.log.ErrorContext(ctx, "revoking session at logout", "err", err)
				textError(w, http.StatusServiceUnavailable, "Logging out failed; try again shortly.")
				return
			}
		}
		http.SetCookie(w, s.sessionCookie("", -1))
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	})
}

// purgeSessions deletes sessions ended over a week ago, at most once an hour per process.
func (s *Service) purgeSessions(ctx context.Context) {
	s.purgeMu.Lock()
	if time.Since(s.lastPurge) < time.Hour {
		s.purgeMu.Unlock()
		return
	}
	s.lastPurge = time.Now()
	s.purgeMu.Unlock()
	if n, err := s.st.SessionPurge(ctx, time.Now().Add(-7*24*time.Hour)); err != nil {
		s.log.WarnContext(ctx, "purging old sessions", "err", err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "purged old sessions", "count", n)
	}
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// validCookieValue accepts what randomString(16) makes, so that nothing else reaches the database.
func validCookieValue(v string) bool {
	if len(v) != 22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil
}
