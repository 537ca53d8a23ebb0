package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const (
	testArgon  = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
	testBcrypt = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
)

func TestAuthLoad(t *testing.T) {
	file := writeFile(t, fmt.Sprintf(`
auth:
  session_ttl: 8h
  cookie_secure: false
  trusted_proxies: [10.0.0.0/8, "::1"]
  users:
    - {name: ada, password_hash: %q, role: admin}
    - {name: dan, password_hash: %q, role: deployer}
  oidc:
    issuer: https://dex.example.com
    client_id: slipway
    client_secret: very-secret-client-secret
    redirect_url: https://slipway.example.com/auth/oidc/callback
    roles:
      - {group: ops, role: deployer}
      - {email: Boss@Example.com, role: admin}
      - {email_domain: "@Example.com.", role: viewer}
`, testArgon, testBcrypt))
	cfg, err := Load(file, []string{base})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Auth
	if a.SessionTTL.D() != 8*time.Hour || a.Secure() || len(a.Users) != 2 || a.Users[1].PasswordHash.Reveal() != testBcrypt {
		t.Errorf("auth %+v", a)
	}
	o := a.OIDC
	if !o.Enabled() || o.Name != "single sign-on" || o.Roles[1].Email != "boss@example.com" || o.Roles[2].EmailDomain != "example.com" ||
		strings.Join(o.Scopes, " ") != "openid email profile groups" {
		t.Errorf("oidc %+v", o)
	}
	// Secrets never print.
	for _, s := range []string{fmt.Sprintf("%v", a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a)} {
		if strings.Contains(s, "very-secret") || strings.Contains(s, "c2FsdHNhbHRz") || strings.Contains(s, "N9qo8u") {
			t.Errorf("printed a secret: %s", s)
		}
	}
	// Defaults: 12h, secure.
	cfg, err = Load("", []string{base})
	if err != nil || cfg.Auth.SessionTTL.D() != 12*time.Hour || !cfg.Auth.Secure() || cfg.Auth.OIDC.Enabled() {
		t.Errorf("defaults %+v %v", cfg.Auth, err)
	}
}

func TestAuthValidate(t *testing.T) {
	okOIDC := OIDC{Issuer: "https://dex.example.com", ClientID: "slipway", RedirectURL: "https://s.example.com/auth/oidc/callback",
		Roles: []OIDCRole{{Group: "ops", Role: "viewer"}}}
	for _, c := range []struct {
		name string
		auth Auth
		want string // "" valid
	}{
		{"ok", Auth{Users: []User{{Name: "ada", PasswordHash: testArgon, Role: "admin"}}, OIDC: okOIDC}, ""},
		{"bad role", Auth{Users: []User{{Name: "ada", PasswordHash: testArgon, Role: "root"}}}, `auth.users[0].role: "root" is not viewer, deployer or admin`},
		{"no hash", Auth{Users: []User{{Name: "ada", Role: "admin"}}}, "auth.users[0].password_hash: required"},
		{"plain password", Auth{Users: []User{{Name: "ada", PasswordHash: "hunter2-plaintext", Role: "admin"}}}, "auth.users[0].password_hash: not an argon2id"},
		{"name with colon", Auth{Users: []User{{Name: "token:x", PasswordHash: testArgon, Role: "admin"}}}, "auth.users[0].name"},
		{"duplicate", Auth{Users: []User{{Name: "a", PasswordHash: testArgon, Role: "admin"}, {Name: "a", PasswordHash: testBcrypt, Role: "viewer"}}}, `auth.users[1].name: "a" is also auth.users[0]`},
		{"ttl", Auth{SessionTTL: Duration(time.Second)}, "auth.session_ttl"},
		{"proxy", Auth{TrustedProxies: []string{"proxy.local"}}, "auth.trusted_proxies[0]"},
		{"oidc without issuer", Auth{OIDC: OIDC{ClientID: "x"}}, "auth.oidc.issuer: required"},
		{"oidc http", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Issuer = "http://dex.example.com" })}, "auth.oidc.issuer"},
		{"oidc http loopback", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Issuer = "http://127.0.0.1:5556/dex" })}, ""},
		{"oidc url with credentials", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Issuer = "https://u:pa55word@dex.example.com" })}, "auth.oidc.issuer"},
		{"oidc callback path", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.RedirectURL = "https://s.example.com/callback" })}, "auth.oidc.redirect_url"},
		{"oidc no client", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.ClientID = "" })}, "auth.oidc.client_id: required"},
		{"oidc rule two keys", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Roles = []OIDCRole{{Group: "g", Email: "a@b.c", Role: "viewer"}} })}, "auth.oidc.roles[0]: needs exactly one"},
		{"oidc rule role", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Roles = []OIDCRole{{Group: "g", Role: "owner"}} })}, "auth.oidc.roles[0].role"},
		{"oidc bad email", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Roles = []OIDCRole{{Email: "nobody", Role: "viewer"}} })}, "auth.oidc.roles[0].email"},
		{"oidc bad domain", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Roles = []OIDCRole{{EmailDomain: "a b", Role: "viewer"}} })}, "auth.oidc.roles[0].email_domain"},
		{"oidc nobody", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Roles = nil })}, "auth.oidc.roles: no rule and no default_role"},
		{"oidc default only", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Roles = nil; o.DefaultRole = "viewer" })}, ""},
		{"oidc default bad", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.DefaultRole = "god" })}, "auth.oidc.default_role"},
		{"oidc scopes", Auth{OIDC: with(okOIDC, func(o *OIDC) { o.Scopes = []string{"email"} })}, "auth.oidc.scopes: must include openid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.auth.OIDC.ClientSecret = "client-secret-value"
			if !c.auth.OIDC.Enabled() && c.auth.OIDC.ClientID == "" {
				c.auth.OIDC.ClientSecret = ""
			}
			cfg := Defaults()
			cfg.DatabaseURL = "postgres://localhost/db"
			cfg.Auth = c.auth
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				// Validating again changes nothing.
				before := fmt.Sprintf("%#v", cfg.Auth)
				if err := cfg.Validate(); err != nil || fmt.Sprintf("%#v", cfg.Auth) != before {
					t.Errorf("second Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
			for _, secret := range []string{"c2FsdHNhbHRz", "N9qo8u", "hunter2", "client-secret-value", "pa55word"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error quotes a secret: %v", err)
				}
			}
		})
	}
}

func with(o OIDC, f func(*OIDC)) OIDC {
	o.Roles = append([]OIDCRole(nil), o.Roles...)
	f(&o)
	return o
}
