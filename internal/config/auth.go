package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/auth/password"
)

// Auth is who may use the dashboard and the API: users with password hashes, single sign-on
// through OpenID Connect, and how browser sessions last. The API's config tokens (api.tokens)
// stay admin tokens.
type Auth struct {
	Users []User `yaml:"users"`
	// SessionTTL is how long a login lasts, from the login; default 12h.
	SessionTTL Duration `yaml:"session_ttl"`
	// CookieSecure marks the session cookie Secure (and names it __Host-slipway_session), so a
	// browser sends it over https only. Default true; a server reached over plain http (the
	// local demo on 127.0.0.1) sets false, or browsers drop the cookie.
	CookieSecure *bool `yaml:"cookie_secure"`
	// TrustedProxies are the addresses (IPs or CIDRs) of reverse proxies whose X-Forwarded-For
	// names the client: rate limits and the audit log then count the client, not the proxy.
	// Default none: the peer's address is the client's.
	TrustedProxies []string `yaml:"trusted_proxies"`
	OIDC           OIDC     `yaml:"oidc"`
}

// User is one login from the config.
type User struct {
	Name string `yaml:"name"`
	// PasswordHash is argon2id in PHC form or bcrypt; `slipway hash-password` prints one.
	PasswordHash Secret `yaml:"password_hash"`
	Role         string `yaml:"role"` // viewer, deployer, admin
}

// OIDC is single sign-on through an OpenID Connect provider (Dex in front of GitHub, Google,
// Okta…); set issuer to turn it on.
type OIDC struct {
	Issuer       string `yaml:"issuer"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// RedirectURL is this server's callback as the provider knows it: https://HOST/auth/oidc/callback.
	RedirectURL string `yaml:"redirect_url"`
	// Name is the provider's name on the login button; default "single sign-on".
	Name string `yaml:"name"`
	// Scopes requested; default openid, email, profile, and groups when a rule names a group.
	Scopes []string `yaml:"scopes"`
	// Roles map an identity to a role; of the rules that match, the highest role wins. Emails
	// match only when the provider says they are verified (email_verified).
	Roles []OIDCRole `yaml:"roles"`
	// DefaultRole is the role of anyone the provider logs in whom no rule matches; default none:
	// refused. With a public provider (Google), leave it none and list domains or groups.
	DefaultRole string `yaml:"default_role"`
}

// OIDCRole gives Role to the identities in Group (the groups claim), with Email, or with an
// email in EmailDomain; exactly one of the three is set.
type OIDCRole struct {
	Group       string `yaml:"group"`
	Email       string `yaml:"email"`
	EmailDomain string `yaml:"email_domain"`
	Role        string `yaml:"role"`
}

// Enabled reports whether single sign-on is configured.
func (o OIDC) Enabled() bool { return o.Issuer != "" }

// Secure reports whether the session cookie is Secure (the default).
func (a Auth) Secure() bool { return a.CookieSecure == nil || *a.CookieSecure }

// DefaultSessionTTL is session_ttl's default.
const DefaultSessionTTL = 12 * time.Hour

var (
	// userNameRE keeps ':' out of user names: "token:config" and "oidc:<sub>" are principals of
	// their own and must not be mistaken for a configured user.
	userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$`)
	domainRE   = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
	roleNames  = []string{"viewer", "deployer", "admin"}
)

// validateAuth checks the auth keys and fills their defaults; doing so twice changes nothing.
// A password hash or client secret is never quoted.
func (c *Config) validateAuth(bad func(key, format string, args ...any)) {
	a := &c.Auth
	if a.SessionTTL == 0 {
		a.SessionTTL = Duration(DefaultSessionTTL)
	}
	if d := a.SessionTTL.D(); d < 5*time.Minute || d > 30*24*time.Hour {
		bad("auth.session_ttl", "%s is out of range 5m..720h", d)
	}
	seen := map[string]int{}
	for i, u := range a.Users {
		key := fmt.Sprintf("auth.users[%d]", i)
		if !userNameRE.MatchString(u.Name) {
			bad(key+".name", "%q is not a user name (1 to 64 of letters, digits, . _ @ + -)", u.Name)
		} else if j, dup := seen[u.Name]; dup {
			bad(key+".name", "%q is also auth.users[%d]", u.Name, j)
		} else {
			seen[u.Name] = i
		}
		if u.PasswordHash == "" {
			bad(key+".password_hash", "required")
		} else if err := password.Check(string(u.PasswordHash)); err != nil {
			bad(key+".password_hash", "%v (value not shown)", err)
		}
		if !slices.Contains(roleNames, u.Role) {
			bad(key+".role", "%q is not viewer, deployer or admin", u.Role)
		}
	}
	for i, p := range a.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad(fmt.Sprintf("auth.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", p)
			}
		}
	}
	c.validateOIDC(bad)
}

func (c *Config) validateOIDC(bad func(key, format string, args ...any)) {
	o := &c.Auth.OIDC
	if !o.Enabled() {
		if o.ClientID != "" || o.ClientSecret != "" || o.RedirectURL != "" || len(o.Roles) > 0 {
			bad("auth.oidc.issuer", "required when auth.oidc is configured")
		}
		return
	}
	if err := httpsURL(o.Issuer); err != nil {
		bad("auth.oidc.issuer", "%v", err)
	}
	if o.ClientID == "" {
		bad("auth.oidc.client_id", "required")
	}
	if err := httpsURL(o.RedirectURL); err != nil {
		bad("auth.oidc.redirect_url", "%v", err)
	} else if u, _ := url.Parse(o.RedirectURL); !strings.HasSuffix(u.Path, "/auth/oidc/callback") {
		bad("auth.oidc.redirect_url", "%q must end in /auth/oidc/callback, the path Slipway serves it on", o.RedirectURL)
	}
	if o.Name == "" {
		o.Name = "single sign-on"
	}
	groups := false
	for i := range o.Roles {
		r := &o.Roles[i]
		key := fmt.Sprintf("auth.oidc.roles[%d]", i)
		r.Email = strings.ToLower(strings.TrimSpace(r.Email))
		r.EmailDomain = strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(r.EmailDomain)), "@"), ".")
		n := 0
		for _, v := range []string{r.Group, r.Email, r.EmailDomain} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			bad(key, "needs exactly one of group, email, email_domain")
		}
		if r.Group != "" {
			groups = true
		}
		if r.Email != "" && (strings.Count(r.Email, "@") != 1 || strings.HasPrefix(r.Email, "@") || strings.HasSuffix(r.Email, "@")) {
			bad(key+".email", "%q is not an email address", r.Email)
		}
		if r.EmailDomain != "" && !domainRE.MatchString(r.EmailDomain) {
			bad(key+".email_domain", "%q is not a domain name", r.EmailDomain)
		}
		if !slices.Contains(roleNames, r.Role) {
			bad(key+".role", "%q is not viewer, deployer or admin", r.Role)
		}
	}
	if o.DefaultRole == "none" {
		o.DefaultRole = ""
	}
	if o.DefaultRole != "" && !slices.Contains(roleNames, o.DefaultRole) {
		bad("auth.oidc.default_role", "%q is not none, viewer, deployer or admin", o.DefaultRole)
	}
	if len(o.Scopes) == 0 {
		o.Scopes = []string{"openid", "email", "profile"}
		if groups {
			o.Scopes = append(o.Scopes, "groups")
		}
	} else if !slices.Contains(o.Scopes, "openid") {
		bad("auth.oidc.scopes", "must include openid")
	}
	if len(o.Roles) == 0 && o.DefaultRole == "" {
		bad("auth.oidc.roles", "no rule and no default_role: nobody could log in with single sign-on")
	}
}

// httpsURL accepts an absolute https URL, or http to a loopback host (a provider or server on
// the same machine, as in tests and the local demo).
func httpsURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must be an absolute URL without query, fragment or credentials (value not shown)")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
			return nil
		}
		return fmt.Errorf("%q must be https (http only to a loopback address)", u.String())
	}
	return fmt.Errorf("%q must be https", u.String())
}
