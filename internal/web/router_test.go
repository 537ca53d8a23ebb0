package web_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/internal/web"
)

// password is every test user's; users are named for their role.
const password = "correct horse battery staple"

var (
	hashOnce sync.Once
	hash     string
)

func testUsers(t testing.TB) []config.User {
	hashOnce.Do(func() {
		var err error
		if hash, err = auth.HashPassword(password); err != nil {
			t.Fatal(err)
		}
	})
	var users []config.User
	for _, role := range []string{"viewer", "deployer", "admin"} {
		users = append(users, config.User{Name: role, PasswordHash: config.Secret(hash), Role: role})
	}
	return users
}

// newTestRouter is the router of d on st, with users viewer, deployer and admin, the config token
// token, and (unless d has them) a dashboard and the readiness of a healthy database.
func newTestRouter(t testing.TB, st *store.Store, d web.Deps, logs io.Writer) http.Handler {
	t.Helper()
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	insecure := false
	svc, err := auth.New(config.Auth{Users: testUsers(t), CookieSecure: &insecure}, [][]byte{[]byte(token)}, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	d.Auth, d.Logger = svc, logger
	if d.Dashboard == nil {
		d.Dashboard = web.NewDashboard(web.DashboardDeps{Store: st, Actions: d.Actions, Logger: logger})
	}
	if d.Ready == nil {
		d.Ready = ready{}
	}
	if d.Gatherer == nil {
		d.Gatherer = prometheus.NewRegistry()
	}
	if d.Webhook == nil {
		d.Webhook = http.NotFoundHandler()
	}
	return web.NewRouter(d)
}

// login logs user in through the form and returns its session cookie.
func login(t testing.TB, router http.Handler, user string) *http.Cookie {
	t.Helper()
	form := url.Values{"username": {user}, "password": {password}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	router.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if strings.Contains(c.Name, "slipway_session") && c.Value != "" {
			return c
		}
	}
	t.Fatalf("login %s: %d, no session cookie: %s", user, w.Code, w.Body.String())
	return nil
}

// wantRole is the least role a route needs: none for the public ones.
func wantRole(method, route string) auth.Role {
	switch {
	case route == "/healthz", route == "/readyz", route == "/webhooks/github", route == "/pipeline.schema.json",
		strings.HasPrefix(route, "/static/"), route == "/login", route == "/logout":
		return auth.RoleNone
	case strings.HasPrefix(route, "/admin/"), route == "/api/v1/audit":
		return auth.RoleAdmin
	case strings.HasPrefix(route, "/api/v1/tokens"), strings.HasPrefix(route, "/api/v1/sessions"):
		return auth.RoleViewer
	case method == http.MethodPost:
		return auth.RoleDeployer
	case method == http.MethodGet && (strings.HasSuffix(route, "/rollback") || strings.HasSuffix(route, "/redeploy") ||
		strings.HasSuffix(route, "/cancel") || route == "/deploy"):
		return auth.RoleDeployer // the confirmation pages of actions
	}
	return auth.RoleViewer
}

// Every route answers an anonymous client, and each role below the route's, with 401 (the API),
// a redirect to the login form (pages) or 403; and lets the route's role through.
func TestEveryRouteChecksItsRole(t *testing.T) {
	st := testenv.Store(t)
	router := newTestRouter(t, st, web.Deps{API: st, Actions: &fakeActions{}}, io.Discard)
	cookies := map[auth.Role]*http.Cookie{}
	for _, r := range []auth.Role{auth.RoleViewer, auth.RoleDeployer, auth.RoleAdmin} {
		cookies[r] = login(t, router, r.String())
	}
	routes := 0
	err := chi.Walk(router.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		need := wantRole(method, route)
		if need == auth.RoleNone || route == "/metrics" {
			return nil
		}
		routes++
		// A missing id: a DELETE of session 1 would end the test's own session.
		path := strings.NewReplacer("{id}", "999999", "*", "x").Replace(route)
		for _, as := range []auth.Role{auth.RoleNone, auth.RoleViewer, auth.RoleDeployer, auth.RoleAdmin} {
			req := httptest.NewRequest(method, path, strings.NewReader("{}"))
			if c := cookies[as]; c != nil {
				req.AddCookie(c)
			}
			w := httptest.NewRecorder()
			router.ServeHTTP(w, req)
			switch {
			case as == auth.RoleNone && strings.HasPrefix(route, "/api/v1/"):
				if w.Code != http.StatusUnauthorized {
					t.Errorf("%s %s anonymous: %d, want 401", method, route, w.Code)
				}
			case as == auth.RoleNone:
				if w.Code != http.StatusUnauthorized && !(w.Code == http.StatusSeeOther && strings.HasPrefix(w.Header().Get("Location"), "/login")) {
					t.Errorf("%s %s anonymous: %d %q, want the login form", method, route, w.Code, w.Header().Get("Location"))
				}
			case !as.Can(need):
				if w.Code != http.StatusForbidden {
					t.Errorf("%s %s as %s: %d, want 403", method, route, as, w.Code)
				}
			default:
				if w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
					t.Errorf("%s %s as %s: %d, want it let through", method, route, as, w.Code)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if routes < 30 {
		t.Errorf("only %d routes checked", routes)
	}
}

// A state-changing request another site's page makes the browser send is refused, session cookie
// or not, and nothing happens.
func TestCrossOriginPostRefused(t *testing.T) {
	st := testenv.Store(t)
	acts := &fakeActions{}
	router := newTestRouter(t, st, web.Deps{API: st, Actions: acts}, io.Discard)
	cookie := login(t, router, "deployer")
	for _, target := range []string{"/deployments/1/rollback", "/api/v1/deployments/1/rollback", "/deploy"} {
		req := httptest.NewRequest(http.MethodPost, target, strings.NewReader("repo=acme%2Fapp&branch=main"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		req.AddCookie(cookie)
		w := httptest.NewRecorder()
		router.ServeHTTP(w, req)
		if w.Code != http.StatusForbidden {
			t.Errorf("cross-origin POST %s: %d, want 403", target, w.Code)
		}
	}
	if n := len(acts.Calls()); n != 0 {
		t.Errorf("%d actions ran from cross-origin requests", n)
	}
	// The same request from the server's own page goes through.
	req := httptest.NewRequest(http.MethodPost, "/deployments/1/rollback", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.AddCookie(cookie)
	w := httptest.NewRecorder()
	router.ServeHTTP(w, req)
	if len(acts.Calls()) != 1 {
		t.Errorf("same-origin POST: %d, %d actions ran, want 1", w.Code, len(acts.Calls()))
	}
}
