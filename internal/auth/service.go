package auth

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/auth/password"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

// Store is what the service keeps in PostgreSQL; *store.Store implements it.
type Store interface {
	SessionCreate(ctx context.Context, s store.Session, ttl time.Duration) (store.Session, error)
	SessionGet(ctx context.Context, id string) (store.Session, error)
	SessionTouch(ctx context.Context, id string) error
	SessionRevoke(ctx context.Context, id string) (store.Session, error)
	SessionRevokePublic(ctx context.Context, publicID int64, user string) (store.Session, error)
	SessionList(ctx context.Context, user string, limit int) ([]store.Session, error)
	SessionPurge(ctx context.Context, cutoff time.Time) (int64, error)
	APITokenCreate(ctx context.Context, t store.APIToken, ttl time.Duration) (store.APIToken, error)
	APITokenByHash(ctx context.Context, hash string) (store.APIToken, error)
	APITokenTouch(ctx context.Context, id int64) error
	APITokenRevoke(ctx context.Context, id int64, user string) (store.APIToken, error)
	APITokenList(ctx context.Context, user string, limit int) ([]store.APIToken, error)
	AuditInsert(ctx context.Context, e store.AuditEntry) (store.AuditEntry, error)
	AuditList(ctx context.Context, before int64, limit int) ([]store.AuditEntry, error)
}

var _ Store = (*store.Store)(nil)

// Limits bound failed authentications. A client address may fail FailureBurst times, then once
// per FailureEvery; a user name (password logins) UserBurst times, then once per UserEvery.
// Beyond that the client gets 429 whatever it sends. Clients caps the keys tracked. A zero field
// takes its default: 10, 6s, 10, 30s, 10000.
type Limits struct {
	FailureBurst int
	FailureEvery time.Duration
	UserBurst    int
	UserEvery    time.Duration
	Clients      int
	// Verifications is how many password checks (each tens of MiB with argon2id) run at once;
	// default 4.
	Verifications int
}

func (l Limits) withDefaults() Limits {
	l.FailureBurst = cmp.Or(l.FailureBurst, 10)
	l.FailureEvery = cmp.Or(l.FailureEvery, 6*time.Second)
	l.UserBurst = cmp.Or(l.UserBurst, 10)
	l.UserEvery = cmp.Or(l.UserEvery, 30*time.Second)
	l.Clients = cmp.Or(l.Clients, 10000)
	l.Verifications = cmp.Or(l.Verifications, 4)
	return l
}

// Option changes a Service's defaults.
type Option func(*Service)

// WithLimits sets the rate limits of failed authentications.
func WithLimits(l Limits) Option { return func(s *Service) { s.limits = l } }

// WithHTTPClient sets the client that talks to the OIDC provider (default: 10 s timeout).
func WithHTTPClient(c *http.Client) Option { return func(s *Service) { s.httpClient = c } }

// Service authenticates requests, logs users in and out, manages API tokens and sessions, and
// writes the audit log. Its methods are safe for concurrent use.
type Service struct {
	st         Store
	log        *slog.Logger
	users      map[string]user
	dummyHash  string // verified for unknown users, so they take as long as known ones
	tokens     [][32]byte
	ttl        time.Duration
	secure     bool
	proxies    []netip.Prefix
	limits     Limits
	addrFails  *limiter
	userFails  *limiter
	verifySem  chan struct{}
	httpClient *http.Client
	oidc       *oidcClient // nil when single sign-on is off

	purgeMu   sync.Mutex
	lastPurge time.Time
}

type user struct {
	hash string
	role Role
}

// New builds the service from the auth config (validated), the config's API tokens (admin
// tokens named "token:config"), the store and a logger.
func New(cfg config.Auth, configTokens [][]byte, st Store, logger *slog.Logger, opts ...Option) (*Service, error) {
	s := &Service{
		st:     st,
		log:    logger,
		users:  map[string]user{},
		ttl:    cmp.Or(cfg.SessionTTL.D(), config.DefaultSessionTTL),
		secure: cfg.Secure(),
	}
	for _, o := range opts {
		o(s)
	}
	s.limits = s.limits.withDefaults()
	s.addrFails = newLimiter(s.limits.FailureBurst, s.limits.FailureEvery, s.limits.Clients)
	s.userFails = newLimiter(s.limits.UserBurst, s.limits.UserEvery, s.limits.Clients)
	s.verifySem = make(chan struct{}, s.limits.Verifications)
	if s.httpClient == nil {
		s.httpClient = &http.Client{Timeout: 10 * time.Second}
	}
	for _, t := range configTokens {
		s.tokens = append(s.tokens, sha256.Sum256(t))
	}
	for i, u := range cfg.Users {
		role, err := ParseRole(u.Role)
		if err != nil {
			return nil, fmt.Errorf("auth.users[%d].role: %w", i, err)
		}
		if err := password.Check(u.PasswordHash.Reveal()); err != nil {
			return nil, fmt.Errorf("auth.users[%d].password_hash: %w", i, err)
		}
		s.users[u.Name] = user{hash: u.PasswordHash.Reveal(), role: role}
		if s.dummyHash == "" {
			s.dummyHash = u.PasswordHash.Reveal()
		}
	}
	if s.dummyHash == "" {
		h, err := password.Hash("no user is configured")
		if err != nil {
			return nil, err
		}
		s.dummyHash = h
	}
	for _, p := range cfg.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, fmt.Errorf("auth.trusted_proxies: %q is not an IP address or CIDR", p)
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		s.proxies = append(s.proxies, pfx.Masked())
	}
	if cfg.OIDC.Enabled() {
		o, err := newOIDCClient(cfg.OIDC, s.httpClient)
		if err != nil {
			return nil, err
		}
		s.oidc = o
	}
	return s, nil
}

// SessionCookie is the session cookie's name: __Host-slipway_session when Secure (the browser
// then takes it only from https, for this host, path /), slipway_session otherwise.
func (s *Service) SessionCookie() string {
	if s.secure {
		return "__Host-slipway_session"
	}
	return "slipway_session"
}

// reqState is what Authenticate learnt of a request besides its principal.
type reqState struct {
	client  string // the client's IP address
	failure string // "invalid_token": a bearer token was refused; "unavailable": the store failed
}

type stateKey struct{}

func stateFrom(ctx context.Context) reqState {
	st, _ := ctx.Value(stateKey{}).(reqState)
	return st
}

// ClientAddrFrom returns the client address Authenticate resolved for the request of ctx.
func ClientAddrFrom(ctx context.Context) string { return stateFrom(ctx).client }

// Authenticate resolves who the request acts as and puts it in the context (WithPrincipal): a
// bearer token (the config's api.tokens, or a user's slw_ token), else the session cookie. It
// refuses nothing, except a client whose failed authentications are past its allowance and who
// presents a bearer token again (429): Require and RequireAPI decide.
func (s *Service) Authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := reqState{client: s.clientAddr(r)}
		ctx := r.Context()
		if tok, ok := bearerToken(r); ok {
			if s.limitedAddr(ctx, st.client, "bearer token") {
				s.tooMany(w, r, s.addrFails.retryAfter(limitKey(st.client)))
				return
			}
			p, err := s.bearer(ctx, tok)
			switch {
			case err == nil:
				ctx = WithPrincipal(ctx, p)
			case deploy.ErrorCode(err) == deploy.ENOTFOUND:
				st.failure = "invalid_token"
				s.addrFails.fail(limitKey(st.client))
				s.log.WarnContext(ctx, "api authentication failed", "client_addr", st.client, "method", r.Method,
					"path", truncate(r.URL.Path, 200), "reason", err.Error())
			default:
				st.failure = "unavailable"
				s.log.ErrorContext(ctx, "looking up api token", "err", err)
			}
		} else if c, err := r.Cookie(s.SessionCookie()); err == nil {
			p, err := s.session(ctx, c.Value)
			switch {
			case err == nil:
				ctx = WithPrincipal(ctx, p)
			case deploy.ErrorCode(err) == deploy.ENOTFOUND:
				// Expired, revoked or never ours: the visitor is anonymous and logs in again.
			default:
				st.failure = "unavailable"
				s.log.ErrorContext(ctx, "looking up session", "err", err)
			}
		}
		ctx = context.WithValue(ctx, stateKey{}, st)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// UserTokenPrefix starts every per-user API token.
const UserTokenPrefix = "slw_"

// bearer resolves a bearer token; deploy.ENOTFOUND when it is not a valid one.
func (s *Service) bearer(ctx context.Context, tok string) (Principal, error) {
	sum := sha256.Sum256([]byte(tok))
	match := 0
	for _, t := range s.tokens {
		match |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	if match == 1 {
		return Principal{Name: ConfigTokenPrincipal, Role: RoleAdmin, Via: ViaConfigToken}, nil
	}
	if !strings.HasPrefix(tok, UserTokenPrefix) {
		return Principal{}, deploy.Errorf(deploy.ENOTFOUND, "unknown token")
	}
	t, err := s.st.APITokenByHash(ctx, hex.EncodeToString(sum[:]))
	if err != nil {
		if deploy.ErrorCode(err) == deploy.ENOTFOUND {
			return Principal{}, deploy.Errorf(deploy.ENOTFOUND, "unknown, expired or revoked token")
		}
		return Principal{}, err
	}
	role, err := s.currentRole(t.UserName, t.Via, t.Role)
	if err != nil {
		return Principal{}, deploy.Errorf(deploy.ENOTFOUND, "token %d: %v", t.ID, err)
	}
	if t.LastUsedAt == nil || time.Since(*t.LastUsedAt) > time.Minute {
		if err := s.st.APITokenTouch(ctx, t.ID); err != nil {
			s.log.WarnContext(ctx, "recording api token use", "token_id", t.ID, "err", err)
		}
	}
	return Principal{Name: t.UserName, Role: role, Via: ViaAPIToken, TokenID: t.ID}, nil
}

// session resolves a session cookie's value; deploy.ENOTFOUND when it names no active session.
func (s *Service) session(ctx context.Context, value string) (Principal, error) {
	if !validCookieValue(value) {
		return Principal{}, deploy.Errorf(deploy.ENOTFOUND, "malformed session cookie")
	}
	id := hashHex(value)
	sess, err := s.st.SessionGet(ctx, id)
	if err != nil {
		return Principal{}, err
	}
	role, err := s.currentRole(sess.UserName, sess.Via, sess.Role)
	if err != nil {
		return Principal{}, deploy.Errorf(deploy.ENOTFOUND, "session: %v", err)
	}
	if time.Since(sess.LastSeenAt) > time.Minute {
		if err := s.st.SessionTouch(ctx, id); err != nil {
			s.log.WarnContext(ctx, "recording session use", "session_id", sess.PublicID, "err", err)
		}
	}
	return Principal{Name: sess.UserName, Role: role, Via: sess.Via, SessionID: id, SessionPublicID: sess.PublicID}, nil
}

// currentRole is the role a session or token of a user holds now: a password user's is capped by
// the config as it is now (a user removed or demoted there loses what their sessions and tokens
// gave them); a single sign-on user's is what the provider's claims gave at login.
func (s *Service) currentRole(name, via, stored string) (Role, error) {
	role, err := ParseRole(stored)
	if err != nil {
		return RoleNone, err
	}
	if via == ViaPassword {
		u, ok := s.users[name]
		if !ok {
			return RoleNone, errors.New("user no longer configured")
		}
		role = min(role, u.role)
	}
	return role, nil
}

// clientAddr is the request's client IP: the peer's, or when the peer is a trusted proxy the
// last address of X-Forwarded-For that is not one.
func (s *Service) clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if !s.trusted(ip) {
		return ip.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing before it
		}
		ip = h.Unmap()
		if !s.trusted(ip) {
			break
		}
	}
	return ip.String()
}

func (s *Service) trusted(ip netip.Addr) bool {
	for _, p := range s.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// limitKey is the key a client's failures count under: its IP, an IPv6 one by its /64, which one
// host usually holds whole.
func limitKey(client string) string {
	ip, err := netip.ParseAddr(client)
	if err != nil || !ip.Is6() {
		return client
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
