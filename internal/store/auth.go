package store

import (
	"context"
	"encoding/json"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is a browser session. ID is the SHA-256 (hex) of the cookie's value, which is never
// stored; PublicID is what the API names it by.
type Session struct {
	ID         string
	PublicID   int64
	UserName   string
	Role       string
	Via        string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastSeenAt time.Time
	RevokedAt  *time.Time
	ClientAddr string
	UserAgent  string
}

const sessionColumns = `id, public_id, user_name, role, via, created_at, expires_at, last_seen_at, revoked_at,
	client_addr, user_agent`

func scanSession(row pgx.CollectableRow) (Session, error) {
	var s Session
	err := row.Scan(&s.ID, &s.PublicID, &s.UserName, &s.Role, &s.Via, &s.CreatedAt, &s.ExpiresAt, &s.LastSeenAt,
		&s.RevokedAt, &s.ClientAddr, &s.UserAgent)
	return s, err
}

// sessionInsert opens a session that expires ttl (microseconds, $6) from now, by the database's clock.
const sessionInsert = `
INSERT INTO sessions (id, user_name, role, via, client_addr, user_agent, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, now() + $7::bigint * interval '1 microsecond')
RETURNING ` + sessionColumns

// SessionCreate records a session lasting ttl; s.ID, UserName, Role, Via, ClientAddr and UserAgent
// are taken from s, the rest is the database's.
func (s *Store) SessionCreate(ctx context.Context, in Session, ttl time.Duration) (Session, error) {
	rows, _ := s.pool.Query(ctx, sessionInsert, in.ID, in.UserName, in.Role, in.Via, in.ClientAddr, in.UserAgent,
		ttl.Microseconds())
	out, err := pgx.CollectExactlyOneRow(rows, scanSession)
	return out, interpret(err, "session")
}

// sessionActive finds a session neither revoked nor expired.
const sessionActive = `
SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()`

// SessionGet returns the active session id; one revoked or expired is not found.
func (s *Store) SessionGet(ctx context.Context, id string) (Session, error) {
	rows, _ := s.pool.Query(ctx, sessionActive, id)
	out, err := pgx.CollectExactlyOneRow(rows, scanSession)
	return out, interpret(err, "session")
}

// sessionTouch moves last_seen_at, at most once a minute whatever the callers do.
const sessionTouch = `
UPDATE sessions SET last_seen_at = now()
WHERE id = $1 AND revoked_at IS NULL AND last_seen_at < now() - interval '1 minute'`

// SessionTouch records that session id was used.
func (s *Store) SessionTouch(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, sessionTouch, id)
	return interpret(err, "session")
}

// sessionRevoke revokes by hashed id ($1) or by public id ($2), the latter only a session of user
// $3 unless $3 is empty. A session already revoked keeps its time.
const sessionRevoke = `
UPDATE sessions SET revoked_at = coalesce(revoked_at, now())
WHERE (id = $1 OR public_id = $2) AND ($3 = '' OR user_name = $3)
RETURNING ` + sessionColumns

// SessionRevoke revokes the session whose hashed id is id (logout).
func (s *Store) SessionRevoke(ctx context.Context, id string) (Session, error) {
	rows, _ := s.pool.Query(ctx, sessionRevoke, id, int64(0), "")
	out, err := pgx.CollectExactlyOneRow(rows, scanSession)
	return out, interpret(err, "session")
}

// SessionRevokePublic revokes the session publicID, only one of user unless user is "" (an admin).
func (s *Store) SessionRevokePublic(ctx context.Context, publicID int64, user string) (Session, error) {
	rows, _ := s.pool.Query(ctx, sessionRevoke, "", publicID, user)
	out, err := pgx.CollectExactlyOneRow(rows, scanSession)
	return out, interpret(err, "session")
}

// sessionsActive lists the active sessions of user $1 (all when empty), newest first.
const sessionsActive = `
SELECT ` + sessionColumns + ` FROM sessions
WHERE revoked_at IS NULL AND expires_at > now() AND ($1 = '' OR user_name = $1)
ORDER BY public_id DESC LIMIT $2`

// SessionList returns at most limit active sessions of user (every user's when user is ""), newest first.
func (s *Store) SessionList(ctx context.Context, user string, limit int) ([]Session, error) {
	rows, _ := s.pool.Query(ctx, sessionsActive, user, limit)
	out, err := pgx.CollectRows(rows, scanSession)
	return out, interpret(err, "sessions")
}

// sessionsPurge deletes sessions ended (expired or revoked) before the cutoff: they authorize
// nothing, and the audit log keeps the logins.
const sessionsPurge = `
DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1`

// SessionPurge deletes the sessions that ended before cutoff and returns how many.
func (s *Store) SessionPurge(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, sessionsPurge, cutoff)
	return tag.RowsAffected(), interpret(err, "sessions")
}

// APIToken is a per-user API token. Hash is the SHA-256 (hex) of the token, which is never stored.
type APIToken struct {
	ID         int64
	UserName   string
	Via        string // how the creator had logged in
	Name       string
	Hash       string
	Role       string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

const apiTokenColumns = `id, user_name, via, name, hash, role, created_at, expires_at, last_used_at, revoked_at`

func scanAPIToken(row pgx.CollectableRow) (APIToken, error) {
	var t APIToken
	err := row.Scan(&t.ID, &t.UserName, &t.Via, &t.Name, &t.Hash, &t.Role, &t.CreatedAt, &t.ExpiresAt,
		&t.LastUsedAt, &t.RevokedAt)
	return t, err
}

const apiTokenInsert = `
INSERT INTO api_tokens (user_name, via, name, hash, role, expires_at)
VALUES ($1, $2, $3, $4, $5, now() + $6::bigint * interval '1 microsecond')
RETURNING ` + apiTokenColumns

// APITokenCreate records a token valid for ttl; UserName, Via, Name, Hash and Role come from t.
func (s *Store) APITokenCreate(ctx context.Context, t APIToken, ttl time.Duration) (APIToken, error) {
	rows, _ := s.pool.Query(ctx, apiTokenInsert, t.UserName, t.Via, t.Name, t.Hash, t.Role, ttl.Microseconds())
	out, err := pgx.CollectExactlyOneRow(rows, scanAPIToken)
	return out, interpret(err, "api token")
}

const apiTokenActive = `
SELECT ` + apiTokenColumns + ` FROM api_tokens WHERE hash = $1 AND revoked_at IS NULL AND expires_at > now()`

// APITokenByHash returns the active token whose hash is hash; a revoked or expired one is not found.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (APIToken, error) {
	rows, _ := s.pool.Query(ctx, apiTokenActive, hash)
	out, err := pgx.CollectExactlyOneRow(rows, scanAPIToken)
	return out, interpret(err, "api token")
}

const apiTokenTouch = `
UPDATE api_tokens SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')`

// APITokenTouch records that token id was used, at most once a minute.
func (s *Store) APITokenTouch(ctx context.Context, id int64) error {
	_, err := s.pool.Exec(ctx, apiTokenTouch, id)
	return interpret(err, "api token")
}

const apiTokenRevoke = `
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = $1 AND ($2 = '' OR user_name = $2)
RETURNING ` + apiTokenColumns

// APITokenRevoke revokes token id, only one of user unless user is "" (an admin).
func (s *Store) APITokenRevoke(ctx context.Context, id int64, user string) (APIToken, error) {
	rows, _ := s.pool.Query(ctx, apiTokenRevoke, id, user)
	out, err := pgx.CollectExactlyOneRow(rows, scanAPIToken)
	return out, interpret(err, "api token")
}

// apiTokensList lists the tokens of user $1 (all when empty), revoked and expired ones included
// (they say what happened), newest first.
const apiTokensList = `
SELECT ` + apiTokenColumns + ` FROM api_tokens WHERE ($1 = '' OR user_name = $1) ORDER BY id DESC LIMIT $2`

// APITokenList returns at most limit tokens of user (everyone's when user is ""), newest first.
func (s *Store) APITokenList(ctx context.Context, user string, limit int) ([]APIToken, error) {
	rows, _ := s.pool.Query(ctx, apiTokensList, user, limit)
	out, err := pgx.CollectRows(rows, scanAPIToken)
	return out, interpret(err, "api tokens")
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	ID         int64
	At         time.Time
	Actor      string
	Via        string
	Action     string
	Object     string
	Detail     json.RawMessage // a JSON object
	ClientAddr string
}

const auditColumns = `id, at, actor, via, action, object, detail, client_addr`

func scanAudit(row pgx.CollectableRow) (AuditEntry, error) {
	var e AuditEntry
	err := row.Scan(&e.ID, &e.At, &e.Actor, &e.Via, &e.Action, &e.Object, &e.Detail, &e.ClientAddr)
	return e, err
}

const auditInsert = `
INSERT INTO audit_log (actor, via, action, object, detail, client_addr)
VALUES ($1, $2, $3, $4, coalesce($5::jsonb, '{}'), $6)
RETURNING ` + auditColumns

// AuditInsert records e (its ID and At are the database's) and returns the row.
func (s *Store) AuditInsert(ctx context.Context, e AuditEntry) (AuditEntry, error) {
	var detail *string
	if len(e.Detail) > 0 {
		d := string(e.Detail)
		detail = &d
	}
	rows, _ := s.pool.Query(ctx, auditInsert, e.Actor, e.Via, e.Action, e.Object, detail, e.ClientAddr)
	out, err := pgx.CollectExactlyOneRow(rows, scanAudit)
	return out, interpret(err, "audit entry")
}

// auditPage is keyset paging newest first: rows below id $1, a backward scan of the primary key
// from there (as deep a page costs as the first), stable while rows arrive.
const auditPage = `
SELECT ` + auditColumns + ` FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2`

// AuditList returns at most limit entries older than before (the newest when before is 0), newest first.
func (s *Store) AuditList(ctx context.Context, before int64, limit int) ([]AuditEntry, error) {
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, _ := s.pool.Query(ctx, auditPage, before, limit)
	out, err := pgx.CollectRows(rows, scanAudit)
	return out, interpret(err, "audit log")
}
