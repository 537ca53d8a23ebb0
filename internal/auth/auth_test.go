package auth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/store"
)

// Every kind of caller against every role a page or an API route can require.
func TestRoleMatrix(t *testing.T) {
	h := newHarness(t, nil, auth.WithLimits(auth.Limits{FailureBurst: 1000}))
	vera, dan, ada := h.login("vera"), h.login("dan"), h.login("ada")
	danToken, _ := h.createToken(dan, `{"name":"ci","expires_in":"1h"}`)
	veraToken, _ := h.createToken(ada, `{"name":"ro","role":"viewer","expires_in":"1h"}`)

	callers := []struct {
		name   string
		cookie *http.Cookie
		bearer string
		role   auth.Role // RoleNone: anonymous
		bad    bool      // presented a bad credential
	}{
		{name: "anonymous"},
		{name: "viewer session", cookie: vera, role: auth.RoleViewer},
		{name: "deployer session", cookie: dan, role: auth.RoleDeployer},
		{name: "admin session", cookie: ada, role: auth.RoleAdmin},
		{name: "deployer token", bearer: danToken, role: auth.RoleDeployer},
		{name: "admin's viewer token", bearer: veraToken, role: auth.RoleViewer},
		{name: "config token", bearer: configToken, role: auth.RoleAdmin},
		{name: "unknown user token", bearer: "slw_" + strings.Repeat("A", 43), bad: true},
		{name: "wrong config token", bearer: "not-the-config-token", bad: true},
		{name: "forged cookie", cookie: &http.Cookie{Name: "__Host-slipway_session", Value: strings.Repeat("A", 22)}},
	}
	for _, c := range callers {
		for _, need := range []auth.Role{auth.RoleViewer, auth.RoleDeployer, auth.RoleAdmin} {
			t.Run(c.name+"/"+need.String(), func(t *testing.T) {
				page := h.do(req{method: "GET", path: "/page/" + need.String() + "?x=1", cookie: c.cookie, bearer: c.bearer})
				api := h.do(req{method: "POST", path: "/api/v1/do/" + need.String(), cookie: c.cookie, bearer: c.bearer})
				switch {
				case c.role == auth.RoleNone:
					if page.Code != http.StatusSeeOther || page.Header().Get("Location") != "/login?next=%2Fpage%2F"+need.String()+"%3Fx%3D1" {
						t.Errorf("page: %d Location %q", page.Code, page.Header().Get("Location"))
					}
					if api.Code != http.StatusUnauthorized || errorCode(t, api) != "unauthenticated" {
						t.Errorf("api: %d %s", api.Code, api.Body)
					}
					challenge := api.Header().Get("WWW-Authenticate")
					if !strings.HasPrefix(challenge, `Bearer realm="slipway"`) || c.bad != strings.Contains(challenge, "invalid_token") {
						t.Errorf("api: WWW-Authenticate %q", challenge)
					}
				case !c.role.Can(need):
					if page.Code != http.StatusForbidden {
						t.Errorf("page: %d %s", page.Code, page.Body)
					}
					if api.Code != http.StatusForbidden || errorCode(t, api) != "forbidden" {
						t.Errorf("api: %d %s", api.Code, api.Body)
					}
				default:
					if page.Code != http.StatusOK || api.Code != http.StatusOK {
						t.Errorf("page %d %s, api %d %s", page.Code, page.Body, api.Code, api.Body)
					}
					if !strings.Contains(api.Body.String(), " "+c.role.String()+" ") {
						t.Errorf("acts as %q, want role %s", api.Body, c.role)
					}
				}
			})
		}
	}
}

func TestPasswordLogin(t *testing.T) {
	h := newHarness(t, nil)
	// The form.
	w := h.do(req{method: "GET", path: "/login?next=/deployments/7"})
	if w.Code != 200 || !strings.Contains(w.Body.String(), "next=/deployments/7\n") {
		t.Fatalf("GET /login: %d %s", w.Code, w.Body)
	}
	for _, c := range []struct {
		name, user, pw string
		want           int
	}{
		{"ok argon2id", "vera", "vera-pw-1", http.StatusSeeOther},
		{"ok bcrypt", "dan", "dan-pw-2", http.StatusSeeOther},
		{"wrong password", "vera", "vera-pw-2", http.StatusUnauthorized},
		{"another's password", "ada", "dan-pw-2", http.StatusUnauthorized},
		{"unknown user", "mallory", "vera-pw-1", http.StatusUnauthorized},
		{"empty", "", "", http.StatusUnauthorized},
		{"case matters", "Vera", "vera-pw-1", http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := h.do(req{method: "POST", path: "/login", remote: "192.0.2.1:1000",
				form: url.Values{"username": {c.user}, "password": {c.pw}, "next": {"/deployments/7"}}})
			if w.Code != c.want {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if c.want == http.StatusSeeOther {
				if loc := w.Header().Get("Location"); loc != "/deployments/7" {
					t.Errorf("Location %q", loc)
				}
				cookie := sessionCookie(t, w)
				h.secret(cookie.Value)
				if got := h.do(req{method: "GET", path: "/", cookie: cookie}).Body.String(); got != c.user+" "+users[idx(c.user)].role+" password" {
					t.Errorf("the session acts as %q", got)
				}
				return
			}
			body := w.Body.String()
			if !strings.Contains(body, "error=Wrong username or password.") || !strings.Contains(body, "next=/deployments/7") ||
				!strings.Contains(body, "username="+c.user+"\n") {
				t.Errorf("page: %s", body)
			}
			if len(w.Result().Cookies()) != 0 {
				t.Errorf("a failed login set a cookie: %v", w.Result().Cookies())
			}
		})
	}
	// The audit log has each, with the name tried and never a password.
	var ok, failed int
	for _, e := range h.auditRows() {
		if strings.Contains(string(e.Detail), "pw-") {
			t.Errorf("audit row holds a password: %+v", e)
		}
		switch e.Action {
		case "login":
			ok++
			if e.Via != "password" || e.ClientAddr != "192.0.2.1" || !strings.HasPrefix(e.Object, "session:") {
				t.Errorf("login row %+v", e)
			}
		case "login.failed":
			failed++
			if e.Actor != "anonymous" || !strings.Contains(string(e.Detail), `"username"`) {
				t.Errorf("failed login row %+v %s", e, e.Detail)
			}
		}
	}
	if ok != 2 || failed != 5 {
		t.Errorf("audit: %d logins, %d failed; want 2, 5", ok, failed)
	}
}

func idx(name string) int {
	for i, u := range users {
		if u.name == name {
			return i
		}
	}
	return 0
}

func TestLoginRateLimit(t *testing.T) {
	h := newHarness(t, nil, auth.WithLimits(auth.Limits{FailureBurst: 3, FailureEvery: time.Hour, UserBurst: 5, UserEvery: time.Hour}))
	try := func(remote, user, pw string) int {
		return h.do(req{method: "POST", path: "/login", remote: remote, form: url.Values{"username": {user}, "password": {pw}}}).Code
	}
	for i := range 3 {
		if c := try("198.51.100.7:1", "dan", "guess"); c != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, c)
		}
	}
	// Past the address's burst: refused unchecked, even with the right password.
	w := h.do(req{method: "POST", path: "/login", remote: "198.51.100.7:2", form: url.Values{"username": {"dan"}, "password": {"dan-pw-2"}}})
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("right password past the limit: %d", w.Code)
	}
	if ra, _ := strconv.Atoi(w.Header().Get("Retry-After")); ra < 1 || ra > 3600 {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if !strings.Contains(w.Body.String(), "Too many failed logins") {
		t.Errorf("page: %s", w.Body)
	}
	// Another address may still log in: dan has 2 failures left of his name's 5.
	if c := try("198.51.100.8:1", "dan", "dan-pw-2"); c != http.StatusSeeOther {
		t.Fatalf("another address: %d", c)
	}
	// A name's own burst holds across addresses (an attacker with many addresses).
	for i := range 2 {
		if c := try(fmt.Sprintf("203.0.113.%d:1", i), "dan", "guess"); c != http.StatusUnauthorized {
			t.Fatalf("failure from address %d: %d", i, c)
		}
	}
	if c := try("203.0.113.99:1", "dan", "dan-pw-2"); c != http.StatusTooManyRequests {
		t.Fatalf("dan past his name's burst: %d", c)
	}
	if c := try("203.0.113.99:1", "ada", "ada-pw-3"); c != http.StatusSeeOther {
		t.Fatalf("ada from a fresh address: %d", c)
	}
	// Bearer failures count against the address too, and past them the API answers 429.
	for range 3 {
		if c := h.do(req{method: "POST", path: "/api/v1/do/viewer", remote: "[2001:db8::1]:1", bearer: "slw_nope"}).Code; c != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", c)
		}
	}
	// Same /64, another host: limited.
	w = h.do(req{method: "POST", path: "/api/v1/do/viewer", remote: "[2001:db8::2]:1", bearer: configToken})
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || errorCode(t, w) != "rate_limited" {
		t.Fatalf("past the limit: %d %s", w.Code, w.Body)
	}
	// Without credentials the client still reaches what is public.
	if c := h.do(req{method: "GET", path: "/", remote: "[2001:db8::2]:1"}).Code; c != http.StatusOK {
		t.Errorf("public page: %d", c)
	}
}

func TestNextRedirect(t *testing.T) {
	h := newHarness(t, nil)
	for next, want := range map[string]string{
		"/deployments/7?tab=log": "/deployments/7?tab=log",
		"/":                      "/",
		"":                       "/",
		"//evil.example":         "/",
		"/\\evil.example":        "/",
		"/\t/evil.example":       "/",
		"https://evil.example/":  "/",
		"evil.example":           "/",
		"javascript:alert(1)":    "/",
		"/%2F%2Fevil.example":    "/%2F%2Fevil.example", // a path on this server
		"\\\\evil.example":       "/",
		"/a\\b":                  "/",
		"/ok\r\nSet-Cookie: x=1": "/",
	} {
		w := h.do(req{method: "POST", path: "/login", form: url.Values{"username": {"vera"}, "password": {"vera-pw-1"}, "next": {next}}})
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want {
			t.Errorf("next %q: %d Location %q, want %q", next, w.Code, w.Header().Get("Location"), want)
		}
		h.secret(sessionCookie(t, w).Value)
	}
	if got := auth.LoginPath("//evil.example"); got != "/login" {
		t.Errorf("LoginPath: %q", got)
	}
}

func TestCookieFlags(t *testing.T) {
	insecure := false
	for _, c := range []struct {
		name   string
		secure *bool
		cookie string
	}{
		{"default secure", nil, "__Host-slipway_session"},
		{"plain http", &insecure, "slipway_session"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, func(a *config.Auth) { a.CookieSecure = c.secure; a.SessionTTL = config.Duration(2 * time.Hour) })
			w := h.do(req{method: "POST", path: "/login", form: url.Values{"username": {"vera"}, "password": {"vera-pw-1"}}})
			ck := sessionCookie(t, w)
			h.secret(ck.Value)
			if ck.Name != c.cookie || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" ||
				ck.Domain != "" || ck.Secure != (c.secure == nil) || ck.MaxAge != 7200 {
				t.Errorf("cookie %+v", ck)
			}
			if len(ck.Value) != 22 {
				t.Errorf("cookie value of %d characters, want 22 (128 bits)", len(ck.Value))
			}
			// The database holds the value's hash, never the value.
			var n int
			if err := h.st.Pool().QueryRow(t.Context(), `SELECT count(*) FROM sessions WHERE id = $1 OR user_agent = $1 OR client_addr = $1`, ck.Value).Scan(&n); err != nil || n != 0 {
				t.Errorf("the cookie's value is stored (%d rows, %v)", n, err)
			}
			ss, _ := h.st.SessionList(t.Context(), "vera", 10)
			if len(ss) != 1 || ss[0].ExpiresAt.Sub(ss[0].CreatedAt) != 2*time.Hour {
				t.Errorf("sessions %+v", ss)
			}
		})
	}
}

func TestSessionEnds(t *testing.T) {
	h := newHarness(t, nil)
	who := func(c *http.Cookie) string { return h.do(req{method: "GET", path: "/", cookie: c}).Body.String() }

	// Logout revokes the session and clears the cookie.
	c := h.login("vera")
	w := h.do(req{method: "POST", path: "/logout", cookie: c})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("logout: %d %q", w.Code, w.Header().Get("Location"))
	}
	if cl := w.Result().Cookies(); len(cl) != 1 || cl[0].MaxAge >= 0 || cl[0].Value != "" {
		t.Errorf("logout cookie %+v", cl)
	}
	if got := who(c); got != "anonymous" {
		t.Errorf("after logout the cookie acts as %q", got)
	}
	if c := h.do(req{method: "GET", path: "/logout", cookie: c}).Code; c != http.StatusMethodNotAllowed {
		t.Errorf("GET /logout: %d", c)
	}

	// A new login replaces the browser's session: a planted cookie does not survive it.
	old := h.login("dan")
	w = h.do(req{method: "POST", path: "/login", cookie: old, form: url.Values{"username": {"dan"}, "password": {"dan-pw-2"}}})
	h.secret(sessionCookie(t, w).Value)
	if got := who(old); got != "anonymous" {
		t.Errorf("the session before a new login still acts as %q", got)
	}

	// Revoked through the API, by its owner and by an admin; another user cannot.
	vera, dan, ada := h.login("vera"), h.login("dan"), h.login("ada")
	var list struct{ Sessions []auth.SessionView }
	w = h.do(req{method: "GET", path: "/api/v1/sessions", cookie: vera})
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Sessions) != 1 || !list.Sessions[0].Current {
		t.Fatalf("vera's sessions: %s", w.Body)
	}
	if strings.Contains(w.Body.String(), vera.Value) {
		t.Error("the session list shows the cookie's value")
	}
	veraID := list.Sessions[0].ID
	if c := h.do(req{method: "DELETE", path: fmt.Sprintf("/api/v1/sessions/%d", veraID), cookie: dan}).Code; c != http.StatusNotFound {
		t.Errorf("dan revoking vera's session: %d", c)
	}
	if c := h.do(req{method: "DELETE", path: fmt.Sprintf("/api/v1/sessions/%d", veraID), cookie: ada}).Code; c != http.StatusNoContent {
		t.Errorf("ada revoking vera's session: %d", c)
	}
	if got := who(vera); got != "anonymous" {
		t.Errorf("a revoked session acts as %q", got)
	}
	w = h.do(req{method: "GET", path: "/api/v1/sessions", cookie: dan})
	_ = json.Unmarshal(w.Body.Bytes(), &list)
	if c := h.do(req{method: "DELETE", path: fmt.Sprintf("/api/v1/sessions/%d", list.Sessions[0].ID), cookie: dan}).Code; c != http.StatusNoContent {
		t.Errorf("dan revoking his own: %d", c)
	}
	if got := who(dan); got != "anonymous" {
		t.Errorf("a session revoked by its owner acts as %q", got)
	}

	// An expired session is refused (the database's clock decides).
	value := "BBBBBBBBBBBBBBBBBBBBBB"
	if _, err := h.st.SessionCreate(t.Context(), store.Session{ID: hashHex(value), UserName: "ada", Role: "admin", Via: "password"}, -time.Second); err != nil {
		t.Fatal(err)
	}
	if got := who(&http.Cookie{Name: "__Host-slipway_session", Value: value}); got != "anonymous" {
		t.Errorf("an expired session acts as %q", got)
	}

	// last_seen_at moves at most once a minute.
	var planted, seen1, seen2 time.Time
	if err := h.st.Pool().QueryRow(t.Context(), `WITH u AS (UPDATE sessions SET last_seen_at = now() - interval '5 minutes'
		WHERE user_name = 'ada' RETURNING last_seen_at) SELECT max(last_seen_at) FROM u`).Scan(&planted); err != nil {
		t.Fatal(err)
	}
	who(ada)
	_ = h.st.Pool().QueryRow(t.Context(), `SELECT max(last_seen_at) FROM sessions WHERE user_name = 'ada' AND revoked_at IS NULL AND expires_at > now()`).Scan(&seen1)
	who(ada)
	_ = h.st.Pool().QueryRow(t.Context(), `SELECT max(last_seen_at) FROM sessions WHERE user_name = 'ada' AND revoked_at IS NULL AND expires_at > now()`).Scan(&seen2)
	// The first use moves it (it was 5 minutes old), the second, within the minute, does not.
	if !seen1.After(planted) || !seen1.Equal(seen2) {
		t.Errorf("last_seen_at %v then %v", seen1, seen2)
	}

	// A user removed from the config (or demoted) loses what the session gave.
	h2 := newHarness(t, func(a *config.Auth) { a.Users[2].Role = "viewer" })
	if _, err := h2.st.SessionCreate(t.Context(), store.Session{ID: hashHex(value), UserName: "ada", Role: "admin", Via: "password"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := h2.do(req{method: "GET", path: "/", cookie: &http.Cookie{Name: "__Host-slipway_session", Value: value}}).Body.String(); got != "ada viewer password" {
		t.Errorf("a demoted admin's session acts as %q", got)
	}
}

func TestAPITokens(t *testing.T) {
	h := newHarness(t, nil)
	vera, dan, ada := h.login("vera"), h.login("dan"), h.login("ada")

	// Defaults to the caller's role; never above it.
	tok, id := h.createToken(dan, `{"name":"ci","expires_in":"720h"}`)
	if !strings.HasPrefix(tok, "slw_") || len(tok) < 40 {
		t.Errorf("token %q", tok)
	}
	if got := h.do(req{method: "POST", path: "/api/v1/do/deployer", bearer: tok}).Body.String(); got != "dan deployer api-token" {
		t.Errorf("token acts as %q", got)
	}
	for _, c := range []struct {
		cookie *http.Cookie
		bearer string
		body   string
		want   int
	}{
		{dan, "", `{"name":"x","role":"admin","expires_in":"1h"}`, http.StatusForbidden},
		{vera, "", `{"name":"x","role":"deployer","expires_in":"1h"}`, http.StatusForbidden},
		{nil, tok, `{"name":"x","role":"admin","expires_in":"1h"}`, http.StatusForbidden},
		{nil, configToken, `{"name":"x","expires_in":"1h"}`, http.StatusForbidden},
		{dan, "", `{"name":"x"}`, http.StatusBadRequest},
		{dan, "", `{"name":"x","expires_in":"9000h"}`, http.StatusBadRequest},
		{dan, "", `{"name":"x","expires_in":"1s"}`, http.StatusBadRequest},
		{dan, "", `{"name":"","expires_in":"1h"}`, http.StatusBadRequest},
		{dan, "", `{"name":"x","role":"root","expires_in":"1h"}`, http.StatusBadRequest},
		{dan, "", `{"name":"x","expires_in":"1h","extra":1}`, http.StatusBadRequest},
		{dan, "", `{"name":"x","role":"viewer","expires_in":"1h"}`, http.StatusCreated},
		{nil, tok, `{"name":"from a token","role":"viewer","expires_in":"1h"}`, http.StatusCreated},
		{nil, "", `{"name":"x","expires_in":"1h"}`, http.StatusUnauthorized},
	} {
		w := h.do(req{method: "POST", path: "/api/v1/tokens", cookie: c.cookie, bearer: c.bearer, body: c.body})
		if w.Code != c.want {
			t.Errorf("%s: %d %s, want %d", c.body, w.Code, w.Body, c.want)
		}
		if w.Code == http.StatusCreated {
			var v auth.Token
			_ = json.Unmarshal(w.Body.Bytes(), &v)
			h.secret(v.Token)
		}
		if c.bearer == configToken && !strings.Contains(w.Body.String(), "belong to no user") {
			t.Errorf("config token: %s", w.Body)
		}
	}

	// Lists: one's own, an admin everyone's; never a hash or a token.
	var list struct{ Tokens []auth.Token }
	w := h.do(req{method: "GET", path: "/api/v1/tokens", cookie: vera})
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Tokens) != 0 {
		t.Errorf("vera's tokens: %s", w.Body)
	}
	w = h.do(req{method: "GET", path: "/api/v1/tokens", cookie: ada})
	_ = json.Unmarshal(w.Body.Bytes(), &list)
	if len(list.Tokens) != 3 {
		t.Errorf("ada sees %d tokens, want 3: %s", len(list.Tokens), w.Body)
	}
	if strings.Contains(w.Body.String(), "slw_") || strings.Contains(w.Body.String(), hashHex(tok)) || strings.Contains(w.Body.String(), `"hash"`) {
		t.Errorf("the list shows a token or a hash: %s", w.Body)
	}

	// Revoke: not someone else's; one's own, then it is refused.
	if c := h.do(req{method: "DELETE", path: fmt.Sprintf("/api/v1/tokens/%d", id), cookie: vera}).Code; c != http.StatusNotFound {
		t.Errorf("vera revoking dan's token: %d", c)
	}
	if c := h.do(req{method: "DELETE", path: fmt.Sprintf("/api/v1/tokens/%d", id), cookie: dan}).Code; c != http.StatusNoContent {
		t.Errorf("dan revoking his token: %d", c)
	}
	w = h.do(req{method: "POST", path: "/api/v1/do/viewer", bearer: tok})
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Errorf("revoked token: %d %s", w.Code, w.Body)
	}

	// Expired: refused.
	expired := h.secret("slw_expiredexpiredexpiredexpiredexpiredexpir")
	if _, err := h.st.APITokenCreate(t.Context(), store.APIToken{UserName: "ada", Via: "password", Name: "old", Hash: hashHex(expired), Role: "admin"}, -time.Second); err != nil {
		t.Fatal(err)
	}
	if c := h.do(req{method: "POST", path: "/api/v1/do/viewer", bearer: expired}).Code; c != http.StatusUnauthorized {
		t.Errorf("expired token: %d", c)
	}

	// A password user's token follows the config: demoted there, demoted here.
	live := h.secret("slw_liveliveliveliveliveliveliveliveliveliveli")
	if _, err := h.st.APITokenCreate(t.Context(), store.APIToken{UserName: "ghost", Via: "password", Name: "x", Hash: hashHex(live), Role: "admin"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if c := h.do(req{method: "POST", path: "/api/v1/do/viewer", bearer: live}).Code; c != http.StatusUnauthorized {
		t.Errorf("token of a user no longer configured: %d", c)
	}

	// Audit rows for creating and revoking, the token never among them.
	var creates, revokes int
	for _, e := range h.auditRows() {
		if strings.Contains(string(e.Detail), "slw_") {
			t.Errorf("audit row holds a token: %s", e.Detail)
		}
		switch e.Action {
		case "token.create":
			creates++
		case "token.revoke":
			revokes++
			if e.Actor != "dan" || e.Object != fmt.Sprintf("token:%d", id) {
				t.Errorf("revoke row %+v", e)
			}
		}
	}
	if creates != 3 || revokes != 1 {
		t.Errorf("audit: %d creates, %d revokes", creates, revokes)
	}
}

func TestAuditAPI(t *testing.T) {
	h := newHarness(t, nil)
	dan, ada := h.login("dan"), h.login("ada")
	// The router records actions through Audit, with the principal and address of the request.
	r, _ := http.NewRequest("POST", "/x", nil)
	r.RemoteAddr = "192.0.2.44:5"
	var got error
	h.svc.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = h.svc.Audit(r.Context(), "deployment.rollback", "deployment:42", map[string]any{"to": 41})
	})).ServeHTTP(nopWriter{}, withCookie(r, dan))
	if got != nil {
		t.Fatal(got)
	}
	if err := h.svc.Audit(context.Background(), "queue.rescue", "deployment:43", nil); err != nil {
		t.Fatal(err)
	}
	rows := h.auditRows()
	last, prev := rows[len(rows)-1], rows[len(rows)-2]
	if prev.Actor != "dan" || prev.Via != "password" || prev.Action != "deployment.rollback" || prev.Object != "deployment:42" ||
		prev.ClientAddr != "192.0.2.44" || string(prev.Detail) != `{"to": 41}` {
		t.Errorf("action row %+v %s", prev, prev.Detail)
	}
	if last.Actor != "system" {
		t.Errorf("row without a principal: %+v", last)
	}

	// Admins only, paged newest first by id.
	if c := h.do(req{method: "GET", path: "/api/v1/audit", cookie: dan}).Code; c != http.StatusForbidden {
		t.Errorf("deployer reading the audit log: %d", c)
	}
	var seen []int64
	path := "/api/v1/audit?limit=2"
	for range 10 {
		w := h.do(req{method: "GET", path: path, cookie: ada})
		var page struct {
			Entries    []auth.AuditView
			NextCursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		for _, e := range page.Entries {
			seen = append(seen, e.ID)
		}
		if page.NextCursor == "" {
			break
		}
		// A row arriving between pages does not shift the next one.
		_ = h.svc.Audit(context.Background(), "noise", "", nil)
		path = "/api/v1/audit?limit=2&before=" + page.NextCursor
	}
	if len(seen) != len(rows) {
		t.Errorf("paged %d entries, want %d: %v", len(seen), len(rows), seen)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] >= seen[i-1] {
			t.Errorf("not newest first: %v", seen)
		}
	}
	if c := h.do(req{method: "GET", path: "/api/v1/audit?before=x", cookie: ada}).Code; c != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", c)
	}
}

type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (nopWriter) WriteHeader(int)             {}

func withCookie(r *http.Request, c *http.Cookie) *http.Request { r.AddCookie(c); return r }

func TestTrustedProxies(t *testing.T) {
	h := newHarness(t, func(a *config.Auth) { a.TrustedProxies = []string{"10.0.0.0/8", "::1"} })
	for _, c := range []struct{ remote, xff, want string }{
		{"192.0.2.1:1", "203.0.113.9", "192.0.2.1"},           // not a proxy: its header is the client's word
		{"10.1.2.3:1", "203.0.113.9", "203.0.113.9"},          // a proxy names the client
		{"10.1.2.3:1", "1.1.1.1, 203.0.113.9", "203.0.113.9"}, // the client's own claim (1.1.1.1) is not believed
		{"10.1.2.3:1", "203.0.113.9, 10.9.9.9", "203.0.113.9"},
		{"[::1]:1", "garbage", "::1"},
		{"10.1.2.3:1", "", "10.1.2.3"},
	} {
		var got string
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		h.svc.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = auth.ClientAddrFrom(r.Context())
		})).ServeHTTP(nopWriter{}, r)
		if got != c.want {
			t.Errorf("%s with X-Forwarded-For %q: %q, want %q", c.remote, c.xff, got, c.want)
		}
	}
}
