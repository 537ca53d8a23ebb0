// Package auth says who is asking and what they may do: users from the server config (password
// or OpenID Connect login) with sessions in PostgreSQL, per-user API tokens, the config's API
// tokens as admin tokens, and the audit log of every action and login.
package auth

import (
	"context"
	"fmt"
	"net/http"
)

// Role is what a principal may do. Each role can do everything the roles before it can.
type Role int

// Roles, in increasing power.
const (
	RoleNone     Role = iota
	RoleViewer        // reads everything but the configuration
	RoleDeployer      // also deploys, redeploys, rolls back and cancels
	RoleAdmin         // also sees the configuration (secrets redacted) and the audit log
)

var roleNames = [...]string{"none", "viewer", "deployer", "admin"}

func (r Role) String() string {
	if r < 0 || int(r) >= len(roleNames) {
		return fmt.Sprintf("Role(%d)", int(r))
	}
	return roleNames[r]
}

// ParseRole reads a role's name as the config spells it.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if i > 0 && n == s {
			return Role(i), nil
		}
	}
	return RoleNone, fmt.Errorf("role must be viewer, deployer or admin, not %q", s)
}

// Can reports whether r includes want.
func (r Role) Can(want Role) bool { return r >= want }

// Principal is who a request acts as.
type Principal struct {
	// Name is what the history and the audit log record: a user's name (a configured user's, the
	// verified email of a single sign-on user or "oidc:<sub>" without one; a user's API token acts
	// under the user's name), or "token:config" for the config's API tokens.
	Name string
	Role Role
	// Via says how it authenticated: "password", "oidc", "api-token", "config-token".
	Via string
	// SessionID is set for a browser session (hashed id), so logout can revoke it.
	SessionID string
	// SessionPublicID is the session's id in the API (GET /api/v1/sessions); 0 without a session.
	SessionPublicID int64
	// TokenID is the id of the user's API token the request presented; 0 for none.
	TokenID int64
}

// How a principal authenticated (Principal.Via), and the config tokens' principal.
const (
	ViaPassword          = "password"
	ViaOIDC              = "oidc"
	ViaAPIToken          = "api-token"
	ViaConfigToken       = "config-token"
	ConfigTokenPrincipal = "token:config"
)

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// LoginPage is what the login form shows; the dashboard draws it (internal/web), the login
// handler here fills it.
type LoginPage struct {
	Error    string // why the last attempt failed, in words safe to show
	Next     string // where to go after logging in: a local path only
	Username string // the name last tried, to fill the field again
	OIDC     bool   // offer "log in with single sign-on"
	OIDCName string // what to call the provider on the button
}

// LoginRenderer draws the login form with status.
type LoginRenderer func(w http.ResponseWriter, r *http.Request, status int, page LoginPage)
