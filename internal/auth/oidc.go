package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/slipway-dev/slipway/internal/config"
)

// Paths of single sign-on; the provider must know oidcCallbackPath (as auth.oidc.redirect_url).
const (
	OIDCLoginPath    = "/auth/oidc/login"
	OIDCCallbackPath = "/auth/oidc/callback"
)

// flowTTL is how long a browser has, from "log in with single sign-on", to come back.
const flowTTL = 10 * time.Minute

// oidcClient talks to one OpenID Connect provider. The provider's discovery document is fetched
// on first use, not at start, so that a provider down does not stop the server; a failure is
// remembered for a few seconds, so that anonymous visitors cannot make us hammer the provider.
type oidcClient struct {
	cfg    config.OIDC
	name   string
	client *http.Client
	roles  []roleRule
	deflt  Role

	mu       sync.Mutex
	provider *oidc.Provider
	failedAt time.Time
}

type roleRule struct {
	group, email, domain string
	role                 Role
}

func newOIDCClient(cfg config.OIDC, client *http.Client) (*oidcClient, error) {
	o := &oidcClient{cfg: cfg, name: cfg.Name, client: client}
	if o.name == "" {
		o.name = "single sign-on"
	}
	if len(o.cfg.Scopes) == 0 {
		o.cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	for i, r := range cfg.Roles {
		role, err := ParseRole(r.Role)
		if err != nil {
			return nil, fmt.Errorf("auth.oidc.roles[%d].role: %w", i, err)
		}
		o.roles = append(o.roles, roleRule{group: r.Group, email: strings.ToLower(r.Email),
			domain: strings.ToLower(strings.TrimPrefix(r.EmailDomain, "@")), role: role})
	}
	if d := cfg.DefaultRole; d != "" && d != "none" {
		role, err := ParseRole(d)
		if err != nil {
			return nil, fmt.Errorf("auth.oidc.default_role: %w", err)
		}
		o.deflt = role
	}
	return o, nil
}

// setup returns the provider's OAuth2 config and ID token verifier, discovering them once.
func (o *oidcClient) setup(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider == nil {
		if time.Since(o.failedAt) < 10*time.Second {
			return nil, nil, errors.New("provider discovery failed moments ago")
		}
		// The provider keeps this context for fetching its keys later: not the request's.
		dctx, cancel := context.WithTimeout(oidc.ClientContext(context.WithoutCancel(ctx), o.client), 15*time.Second)
		defer cancel()
		p, err := oidc.NewProvider(oidc.ClientContext(dctx, o.client), o.cfg.Issuer)
		if err != nil {
			o.failedAt = time.Now()
			return nil, nil, fmt.Errorf("discovering OIDC provider %s: %w", o.cfg.Issuer, err)
		}
		o.provider = p
	}
	oc := &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret.Reveal(),
		Endpoint: o.provider.Endpoint(), RedirectURL: o.cfg.RedirectURL, Scopes: o.cfg.Scopes}
	v := o.provider.Verifier(&oidc.Config{ClientID: o.cfg.ClientID})
	return oc, v, nil
}

// flow is what the browser keeps (HttpOnly cookie) between leaving for the provider and coming
// back: the state it must return with, the nonce the ID token must carry, the PKCE verifier.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Started  int64  `json:"t"`
}

func (s *Service) flowCookieName() string {
	if s.secure {
		return "__Host-slipway_oidc"
	}
	return "slipway_oidc"
}

func (s *Service) flowCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: s.flowCookieName(), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

// OIDCLoginHandler serves GET /auth/oidc/login?next=: it sends the browser to the provider.
func (s *Service) OIDCLoginHandler(render LoginRenderer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if s.oidc == nil {
			http.NotFound(w, r)
			return
		}
		ctx := r.Context()
		page := LoginPage{OIDC: true, OIDCName: s.oidc.name, Next: SafeNext(r.URL.Query().Get("next"))}
		oc, _, err := s.oidc.setup(ctx)
		if err != nil {
			s.log.ErrorContext(ctx, "single sign-on unavailable", "err", err)
			page.Error = "Single sign-on is unavailable right now; try again shortly."
			render(w, r, http.StatusServiceUnavailable, page)
			return
		}
		f := flow{Verifier: oauth2.GenerateVerifier(), Next: page.Next, Started: time.Now().Unix()}
		if f.State, err = randomString(32); err == nil {
			f.Nonce, err = randomString(32)
		}
		if err != nil {
			s.log.ErrorContext(ctx, "starting single sign-on", "err", err)
			page.Error = "Single sign-on is unavailable right now; try again shortly."
			render(w, r, http.StatusInternalServerError, page)
			return
		}
		b, _ := json.Marshal(f)
		http.SetCookie(w, s.flowCookie(base64.RawURLEncoding.EncodeToString(b), int(flowTTL/time.Second)))
		http.Redirect(w, r, oc.AuthCodeURL(f.State, oauth2.S256ChallengeOption(f.Verifier), oidc.Nonce(f.Nonce)),
			http.StatusFound)
	})
}

// idClaims are the ID token's claims Slipway reads.
type idClaims struct {
	Subject       string `json:"sub"`
	Email         string `json:"email"`
	EmailVerified any    `json:"email_verified"` // a boolean; some providers send "true"
	Groups        any    `json:"groups"`         // a list; some providers send one string
}

var errorCodeRE = regexp.MustCompile(`^[a-z_]{1,64}$`)

// OIDCCallbackHandler serves GET /auth/oidc/callback: it exchanges the code (with the PKCE
// verifier), verifies the ID token (signature, issuer, audience, expiry, nonce), maps the identity
// to a role and opens a session, as a password login does.
func (s *Service) OIDCCallbackHandler(render LoginRenderer) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if s.oidc == nil {
			http.NotFound(w, r)
			return
		}
		ctx := r.Context()
		client := s.clientAddr(r)
		page := LoginPage{OIDC: true, OIDCName: s.oidc.name, Next: "/"}
		refuse := func(status int, reason, msg string, counts bool) {
			if counts {
				s.addrFails.fail(limitKey(client))
			}
			s.log.WarnContext(ctx, "login failed", "via", ViaOIDC, "client_addr", client, "reason", reason)
			s.audit(ctx, Principal{Name: "anonymous", Via: ViaOIDC}, client, "login.failed", "",
				map[string]any{"reason": reason})
			page.Error = msg
			render(w, r, status, page)
		}
		if s.limitedAddr(ctx, client, "single sign-on") {
			retry := s.addrFails.retryAfter(limitKey(client))
			w.Header().Set("Retry-After", fmt.Sprint(retry))
			page.Error = fmt.Sprintf("Too many failed logins. Try again in %d seconds.", retry)
			render(w, r, http.StatusTooManyRequests, page)
			return
		}
		f, ok := s.readFlow(r)
		http.SetCookie(w, s.flowCookie("", -1)) // one use
		q := r.URL.Query()
		if e := q.Get("error"); e != "" {
			if !errorCodeRE.MatchString(e) {
				e = "unknown"
			}
			refuse(http.StatusUnauthorized, "provider refused: "+e, "The identity provider did not log you in ("+e+").", false)
			return
		}
		if !ok || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
			refuse(http.StatusBadRequest, "state missing, expired or not this browser's",
				"The single sign-on took too long or was started in another browser; try again.", true)
			return
		}
		page.Next = f.Next
		oc, verifier, err := s.oidc.setup(ctx)
		if err != nil {
			s.log.ErrorContext(ctx, "single sign-on unavailable", "err", err)
			page.Error = "Single sign-on is unavailable right now; try again shortly."
			render(w, r, http.StatusServiceUnavailable, page)
			return
		}
		xctx := oidc.ClientContext(ctx, s.oidc.client)
		tok, err := oc.Exchange(xctx, q.Get("code"), oauth2.VerifierOption(f.Verifier))
		if err != nil {
			refuse(http.StatusBadGateway, "code exchange: "+exchangeReason(err), "Single sign-on failed; try again.", true)
			return
		}
		raw, _ := tok.Extra("id_token").(string)
		if raw == "" {
			refuse(http.StatusBadGateway, "no id_token in the token response", "Single sign-on failed; try again.", true)
			return
		}
		idt, err := verifier.Verify(xctx, raw)
		if err != nil {
			refuse(http.StatusUnauthorized, "id token: "+truncate(err.Error(), 300), "Single sign-on failed; try again.", true)
			return
		}
		if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
			refuse(http.StatusUnauthorized, "id token: nonce does not match", "Single sign-on failed; try again.", true)
			return
		}
		var c idClaims
		if err := idt.Claims(&c); err != nil {
			refuse(http.StatusBadGateway, "id token claims: "+truncate(err.Error(), 300), "Single sign-on failed; try again.", true)
			return
		}
		name, role := s.oidc.identify(c)
		if role == RoleNone {
			s.log.WarnContext(ctx, "login refused: no role", "via", ViaOIDC, "user", name, "client_addr", client)
			s.audit(ctx, Principal{Name: name, Via: ViaOIDC}, client, "login.failed", "",
				map[string]any{"reason": "no role for this identity", "groups": groupList(c.Groups)})
			page.Error = fmt.Sprintf("You are signed in as %s, but that account has no role in Slipway. Ask an administrator for one.", name)
			render(w, r, http.StatusForbidden, page)
			return
		}
		s.loggedIn(w, r, render, page, Principal{Name: name, Role: role, Via: ViaOIDC}, client)
	})
}

// exchangeReason says why a code exchange failed without the provider's whole answer.
func exchangeReason(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Sprintf("%d %s", re.Response.StatusCode, truncate(re.ErrorCode, 64))
		}
		return fmt.Sprint(re.Response.StatusCode)
	}
	return truncate(err.Error(), 300)
}

func (s *Service) readFlow(r *http.Request) (flow, bool) {
	var f flow
	c, err := r.Cookie(s.flowCookieName())
	if err != nil || len(c.Value) > 1024 {
		return f, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || json.Unmarshal(b, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return f, false
	}
	if age := time.Since(time.Unix(f.Started, 0)); age < 0 || age > flowTTL {
		return f, false
	}
	f.Next = SafeNext(f.Next)
	return f, true
}

// identify names the identity (its verified email, else "oidc:<sub>") and finds its role: the
// highest of the rules that match, else the default role (none: refused). An email the provider
// does not call verified matches no email or domain rule.
func (o *oidcClient) identify(c idClaims) (string, Role) {
	verified := false
	switch v := c.EmailVerified.(type) {
	case bool:
		verified = v
	case string:
		verified = v == "true"
	}
	email := strings.ToLower(strings.TrimSpace(c.Email))
	name := "oidc:" + c.Subject
	if verified && email != "" {
		name = email
	} else {
		email = ""
	}
	groups := groupList(c.Groups)
	role := RoleNone
	for _, r := range o.roles {
		match := false
		switch {
		case r.group != "":
			for _, g := range groups {
				match = match || g == r.group
			}
		case r.email != "":
			match = email != "" && email == r.email
		case r.domain != "":
			_, domain, _ := strings.Cut(email, "@")
			match = email != "" && domain == r.domain
		}
		if match {
			role = max(role, r.role)
		}
	}
	if role == RoleNone {
		role = o.deflt
	}
	return name, role
}

func groupList(v any) []string {
	switch g := v.(type) {
	case string:
		return []string{g}
	case []any:
		out := make([]string, 0, len(g))
		for _, x := range g {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
