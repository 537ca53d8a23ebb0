package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
)

const (
	oidcClientID     = "slipway"
	oidcClientSecret = "oidc-client-secret-do-not-log"
)

// provider is an in-process OpenID Connect provider: discovery, JWKS, an authorize endpoint that
// logs the test's identity in at once, and a token endpoint that checks the code, the client's
// secret and the PKCE verifier and signs an RS256 ID token with the test's claims.
type provider struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey

	mu        sync.Mutex
	claims    map[string]any // of the next ID token; nonce is filled in unless set
	codes     map[string]authz
	exchanged int
}

type authz struct{ nonce, challenge, redirect string }

func newProvider(t *testing.T, key *rsa.PrivateKey) *provider {
	p := &provider{t: t, key: key, codes: map[string]authz{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                p.srv.URL,
			"authorization_endpoint":                p.srv.URL + "/authorize",
			"token_endpoint":                        p.srv.URL + "/token",
			"jwks_uri":                              p.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != oidcClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") == "" || q.Get("nonce") == "" || !strings.Contains(q.Get("scope"), "openid") {
			http.Error(w, "bad authorization request: "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		code := rand.Text()
		p.mu.Lock()
		p.codes[code] = authz{nonce: q.Get("nonce"), challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		p.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostFormValue("client_id"), r.PostFormValue("client_secret")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		a, known := p.codes[r.PostFormValue("code")]
		delete(p.codes, r.PostFormValue("code"))
		sum := sha256.Sum256([]byte(r.PostFormValue("code_verifier")))
		if id != oidcClientID || secret != oidcClientSecret || !known || r.PostFormValue("grant_type") != "authorization_code" ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != a.challenge || r.PostFormValue("redirect_uri") != a.redirect {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		p.exchanged++
		claims := map[string]any{"iss": p.srv.URL, "aud": oidcClientID, "sub": "user-1",
			"iat": time.Now().Unix(), "exp": time.Now().Add(5 * time.Minute).Unix(), "nonce": a.nonce}
		for k, v := range p.claims {
			claims[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300,
			"id_token": p.sign(claims)})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) sign(claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: p.key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		p.t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := signer.Sign(b)
	if err != nil {
		p.t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		p.t.Fatal(err)
	}
	return s
}

func (p *provider) setClaims(c map[string]any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.claims = c
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOIDC(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := newProvider(t, key)
	// Slipway on a real server: the browser (a client with a cookie jar) follows the redirects.
	var handler http.Handler
	slipway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(slipway.Close)
	insecure := false
	h := newHarness(t, func(a *config.Auth) {
		a.CookieSecure = &insecure // plain http in the test
		a.OIDC = config.OIDC{Issuer: idp.srv.URL, ClientID: oidcClientID, ClientSecret: oidcClientSecret,
			RedirectURL: slipway.URL + auth.OIDCCallbackPath, Name: "Dex", Scopes: []string{"openid", "email", "groups"},
			Roles: []config.OIDCRole{
				{Group: "ops", Role: "deployer"},
				{Group: "platform-admins", Role: "admin"},
				{Email: "boss@example.com", Role: "admin"},
				{EmailDomain: "example.com", Role: "viewer"},
			}}
	})
	handler = h.h

	login := func(t *testing.T, claims map[string]any) (*http.Response, string, *cookiejar.Jar) {
		t.Helper()
		idp.setClaims(claims)
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, Timeout: time.Minute}
		resp, err := c.Get(slipway.URL + auth.OIDCLoginPath + "?next=" + url.QueryEscape("/deployments/9"))
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		u, _ := url.Parse(slipway.URL)
		for _, ck := range jar.Cookies(u) {
			h.secret(ck.Value)
		}
		return resp, body, jar
	}

	for _, c := range []struct {
		name     string
		claims   map[string]any
		wantCode int
		wantWho  string // after landing on /deployments/9: the body whoami writes there
		wantErr  string
	}{
		{name: "group", claims: map[string]any{"email": "ann@corp.test", "email_verified": true, "groups": []string{"ops"}},
			wantCode: 200, wantWho: "ann@corp.test deployer oidc"},
		{name: "highest rule wins", claims: map[string]any{"email": "Boss@Example.com", "email_verified": true, "groups": []string{"ops"}},
			wantCode: 200, wantWho: "boss@example.com admin oidc"},
		{name: "domain", claims: map[string]any{"email": "eve@example.com", "email_verified": "true"},
			wantCode: 200, wantWho: "eve@example.com viewer oidc"},
		{name: "group without email names the subject", claims: map[string]any{"groups": "platform-admins"},
			wantCode: 200, wantWho: "oidc:user-1 admin oidc"},
		{name: "unverified email", claims: map[string]any{"email": "boss@example.com", "email_verified": false},
			wantCode: 403, wantErr: "oidc:user-1, but that account has no role"},
		{name: "no matching role", claims: map[string]any{"email": "x@elsewhere.test", "email_verified": true, "groups": []string{"devs"}},
			wantCode: 403, wantErr: "x@elsewhere.test, but that account has no role"},
		{name: "wrong nonce", claims: map[string]any{"nonce": "not-the-one", "groups": []string{"ops"}},
			wantCode: 401, wantErr: "Single sign-on failed"},
		{name: "wrong audience", claims: map[string]any{"aud": "another-client", "groups": []string{"ops"}},
			wantCode: 401, wantErr: "Single sign-on failed"},
		{name: "expired", claims: map[string]any{"exp": time.Now().Add(-time.Hour).Unix(), "groups": []string{"ops"}},
			wantCode: 401, wantErr: "Single sign-on failed"},
		{name: "wrong issuer", claims: map[string]any{"iss": "https://evil.example", "groups": []string{"ops"}},
			wantCode: 401, wantErr: "Single sign-on failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body, jar := login(t, c.claims)
			if resp.StatusCode != c.wantCode {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if c.wantWho != "" {
				if resp.Request.URL.Path != "/deployments/9" || body != c.wantWho {
					t.Errorf("landed on %s acting as %q, want %q", resp.Request.URL, body, c.wantWho)
				}
				return
			}
			if !strings.Contains(body, c.wantErr) {
				t.Errorf("page: %s", body)
			}
			u, _ := url.Parse(slipway.URL)
			for _, ck := range jar.Cookies(u) {
				if ck.Name == "slipway_session" {
					t.Errorf("a refused login left a session cookie")
				}
			}
		})
	}

	// A callback without the browser's flow cookie (or with another state) is refused before any
	// exchange with the provider.
	before := idp.exchanged
	resp, err := http.Get(slipway.URL + auth.OIDCCallbackPath + "?code=abc&state=xyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || idp.exchanged != before {
		t.Errorf("callback without a flow: %d, %d exchanges", resp.StatusCode, idp.exchanged-before)
	}
	// The provider's refusal is shown in our words.
	resp, err = http.Get(slipway.URL + auth.OIDCCallbackPath + "?error=access_denied&error_description=%3Cscript%3E")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "(access_denied)") || strings.Contains(body, "script") {
		t.Errorf("provider error: %d %s", resp.StatusCode, body)
	}
	// The login page offers the button.
	if w := h.do(req{method: "GET", path: "/login"}); !strings.Contains(w.Body.String(), "oidc=true Dex") {
		t.Errorf("login page: %s", w.Body)
	}

	// The audit log: the logins and the refusals, with reasons.
	var ok, refused int
	for _, e := range h.auditRows() {
		switch e.Action {
		case "login":
			ok++
			if e.Via != "oidc" {
				t.Errorf("login row %+v", e)
			}
		case "login.failed":
			refused++
		}
	}
	if ok != 4 || refused != 8 {
		t.Errorf("audit: %d logins, %d refused; want 4, 8", ok, refused)
	}
}
