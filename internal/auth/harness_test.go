package auth_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// configToken is the config's API token (api.tokens) of every harness.
const configToken = "config-token-0123456789abcdef"

// users of every harness: name → password and role. Their hashes are bcrypt at the lowest cost
// (fast under the race detector) except vera's, argon2id as HashPassword makes it.
var users = []struct{ name, password, role string }{
	{"vera", "vera-pw-1", "viewer"},
	{"dan", "dan-pw-2", "deployer"},
	{"ada", "ada-pw-3", "admin"},
}

// harness is a Service on a fresh database behind a router shaped like the server's, with a log
// buffer that must never hold a secret the test handed out.
type harness struct {
	t       *testing.T
	svc     *auth.Service
	st      *store.Store
	h       http.Handler
	logs    *testenv.SyncBuffer
	secrets []string
}

func newHarness(t *testing.T, mutate func(*config.Auth), opts ...auth.Option) *harness {
	t.Helper()
	cfg := config.Auth{}
	for _, u := range users {
		var hash string
		if u.role == "viewer" {
			h, err := auth.HashPassword(u.password)
			if err != nil {
				t.Fatal(err)
			}
			hash = h
		} else {
			b, err := bcrypt.GenerateFromPassword([]byte(u.password), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			hash = string(b)
		}
		cfg.Users = append(cfg.Users, config.User{Name: u.name, PasswordHash: config.Secret(hash), Role: u.role})
	}
	if mutate != nil {
		mutate(&cfg)
	}
	h := &harness{t: t, st: testenv.Store(t), logs: &testenv.SyncBuffer{}}
	h.secrets = append(h.secrets, configToken)
	for _, u := range users {
		h.secrets = append(h.secrets, u.password)
	}
	if cfg.OIDC.ClientSecret != "" {
		h.secrets = append(h.secrets, cfg.OIDC.ClientSecret.Reveal())
	}
	svc, err := auth.New(cfg, [][]byte{[]byte(configToken)}, h.st, slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), opts...)
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	r := chi.NewRouter()
	r.Use(svc.Authenticate)
	svc.MountLogin(r, renderLogin)
	for _, role := range []auth.Role{auth.RoleViewer, auth.RoleDeployer, auth.RoleAdmin} {
		r.With(svc.Require(role)).Get("/page/"+role.String(), whoami)
	}
	r.Get("/", whoami)
	r.Get("/deployments/{id}", whoami)
	r.Route("/api/v1", func(r chi.Router) {
		svc.MountAPI(r)
		for _, role := range []auth.Role{auth.RoleViewer, auth.RoleDeployer, auth.RoleAdmin} {
			r.With(svc.RequireAPI(role)).Post("/do/"+role.String(), whoami)
		}
	})
	h.h = r
	t.Cleanup(h.checkLogs)
	return h
}

// checkLogs fails the test when a secret reached the log.
func (h *harness) checkLogs() {
	logs := h.logs.String()
	for _, s := range h.secrets {
		if s != "" && strings.Contains(logs, s) {
			h.t.Errorf("the log holds a secret (%.6s…):\n%s", s, logs)
		}
	}
}

// secret remembers a value the log must never hold.
func (h *harness) secret(s string) string { h.secrets = append(h.secrets, s); return s }

// whoami answers the principal as "name role via".
func whoami(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok {
		fmt.Fprint(w, "anonymous")
		return
	}
	fmt.Fprintf(w, "%s %s %s", p.Name, p.Role, p.Via)
}

// renderLogin draws the login page as key=value lines.
func renderLogin(w http.ResponseWriter, _ *http.Request, status int, p auth.LoginPage) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	fmt.Fprintf(w, "error=%s\nnext=%s\nusername=%s\noidc=%v %s\n", p.Error, p.Next, p.Username, p.OIDC, p.OIDCName)
}

// req is one request through the router.
type req struct {
	method, path string
	body         string
	form         url.Values
	cookie       *http.Cookie
	bearer       string
	remote       string
	header       http.Header
}

func (h *harness) do(q req) *httptest.ResponseRecorder {
	h.t.Helper()
	var r *http.Request
	switch {
	case q.form != nil:
		r = httptest.NewRequest(q.method, q.path, strings.NewReader(q.form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	default:
		r = httptest.NewRequest(q.method, q.path, strings.NewReader(q.body))
		if q.body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
	}
	for k, vs := range q.header {
		r.Header[k] = vs
	}
	if q.cookie != nil {
		r.AddCookie(q.cookie)
	}
	if q.bearer != "" {
		r.Header.Set("Authorization", "Bearer "+q.bearer)
	}
	if q.remote != "" {
		r.RemoteAddr = q.remote
	}
	w := httptest.NewRecorder()
	h.h.ServeHTTP(w, r)
	return w
}

// login logs name in with its password and returns the session cookie.
func (h *harness) login(name string) *http.Cookie {
	h.t.Helper()
	pw := ""
	for _, u := range users {
		if u.name == name {
			pw = u.password
		}
	}
	w := h.do(req{method: "POST", path: "/login", form: url.Values{"username": {name}, "password": {pw}}})
	if w.Code != http.StatusSeeOther {
		h.t.Fatalf("login of %s: %d %s", name, w.Code, w.Body)
	}
	c := sessionCookie(h.t, w)
	h.secret(c.Value)
	return c
}

func sessionCookie(t *testing.T, w *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range w.Result().Cookies() {
		if strings.HasSuffix(c.Name, "slipway_session") && c.Value != "" {
			return c
		}
	}
	t.Fatalf("no session cookie in %v", w.Result().Header["Set-Cookie"])
	return nil
}

// createToken makes an API token as the caller of cookie and returns it with its id.
func (h *harness) createToken(cookie *http.Cookie, body string) (string, int64) {
	h.t.Helper()
	w := h.do(req{method: "POST", path: "/api/v1/tokens", cookie: cookie, body: body})
	if w.Code != http.StatusCreated {
		h.t.Fatalf("creating token: %d %s", w.Code, w.Body)
	}
	var tok auth.Token
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil {
		h.t.Fatal(err)
	}
	return h.secret(tok.Token), tok.ID
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// errorCode reads the code of an API error answer.
func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("not a JSON error: %d %s", w.Code, w.Body)
	}
	return e.Error.Code
}

// auditActions lists the audit log's rows, oldest first, as "actor via action object".
func (h *harness) auditRows() []store.AuditEntry {
	h.t.Helper()
	es, err := h.st.AuditList(h.t.Context(), 0, 500)
	if err != nil {
		h.t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}
