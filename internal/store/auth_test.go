package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

func TestSessions(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	a, err := st.SessionCreate(ctx, store.Session{ID: "h-a", UserName: "ann", Role: "viewer", Via: "password",
		ClientAddr: "192.0.2.1", UserAgent: "ua"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if a.PublicID == 0 || a.ExpiresAt.Sub(a.CreatedAt) != time.Hour || a.RevokedAt != nil {
		t.Fatalf("created %+v", a)
	}
	b, _ := st.SessionCreate(ctx, store.Session{ID: "h-b", UserName: "bob", Role: "admin", Via: "oidc"}, time.Hour)
	if _, err := st.SessionCreate(ctx, store.Session{ID: "h-old", UserName: "ann", Role: "viewer", Via: "password"}, -time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SessionCreate(ctx, store.Session{ID: "h-x", UserName: "ann", Role: "root", Via: "password"}, time.Hour); deploy.ErrorCode(err) != deploy.EINVALID {
		t.Errorf("a session with role root: %v", err)
	}
	if _, err := st.SessionCreate(ctx, store.Session{ID: "h-a", UserName: "eve", Role: "admin", Via: "password"}, time.Hour); deploy.ErrorCode(err) != deploy.ECONFLICT {
		t.Errorf("a second session with the same id: %v", err)
	}

	if got, err := st.SessionGet(ctx, "h-a"); err != nil || got.UserName != "ann" {
		t.Errorf("get: %+v %v", got, err)
	}
	if _, err := st.SessionGet(ctx, "h-old"); deploy.ErrorCode(err) != deploy.ENOTFOUND {
		t.Errorf("an expired session: %v", err)
	}
	if l, _ := st.SessionList(ctx, "ann", 10); len(l) != 1 || l[0].ID != "h-a" {
		t.Errorf("ann's active sessions: %+v", l)
	}
	if l, _ := st.SessionList(ctx, "", 10); len(l) != 2 || l[0].ID != "h-b" {
		t.Errorf("all active sessions, newest first: %+v", l)
	}

	// Touch: at most once a minute.
	if _, err := st.Pool().Exec(ctx, `UPDATE sessions SET last_seen_at = now() - interval '2 minutes' WHERE id = 'h-a'`); err != nil {
		t.Fatal(err)
	}
	_ = st.SessionTouch(ctx, "h-a")
	t1, _ := st.SessionGet(ctx, "h-a")
	_ = st.SessionTouch(ctx, "h-a")
	t2, _ := st.SessionGet(ctx, "h-a")
	if !t1.LastSeenAt.After(a.LastSeenAt.Add(-time.Second)) || !t1.LastSeenAt.Equal(t2.LastSeenAt) {
		t.Errorf("last seen %v then %v", t1.LastSeenAt, t2.LastSeenAt)
	}

	// Revoke by public id: only the owner's, or anyone's for "" (an admin).
	if _, err := st.SessionRevokePublic(ctx, b.PublicID, "ann"); deploy.ErrorCode(err) != deploy.ENOTFOUND {
		t.Errorf("ann revoking bob's: %v", err)
	}
	if r, err := st.SessionRevokePublic(ctx, b.PublicID, ""); err != nil || r.RevokedAt == nil {
		t.Errorf("admin revoking bob's: %+v %v", r, err)
	}
	if _, err := st.SessionGet(ctx, "h-b"); deploy.ErrorCode(err) != deploy.ENOTFOUND {
		t.Errorf("a revoked session: %v", err)
	}
	first, _ := st.SessionRevoke(ctx, "h-a")
	again, _ := st.SessionRevoke(ctx, "h-a")
	if first.RevokedAt == nil || again.RevokedAt == nil || !first.RevokedAt.Equal(*again.RevokedAt) {
		t.Errorf("revoking twice moved the time: %v %v", first.RevokedAt, again.RevokedAt)
	}
	if _, err := st.SessionRevoke(ctx, "nope"); deploy.ErrorCode(err) != deploy.ENOTFOUND {
		t.Errorf("revoking an unknown session: %v", err)
	}

	// Purge: what ended before the cutoff goes, nothing else.
	n, err := st.SessionPurge(ctx, time.Now().Add(time.Hour))
	if err != nil || n != 3 {
		t.Errorf("purged %d, %v; want 3", n, err)
	}
}

func TestAPITokens(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	tok, err := st.APITokenCreate(ctx, store.APIToken{UserName: "ann", Via: "password", Name: "ci", Hash: "hash-1", Role: "deployer"}, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID == 0 || tok.ExpiresAt.Sub(tok.CreatedAt) != 24*time.Hour || tok.LastUsedAt != nil {
		t.Fatalf("created %+v", tok)
	}
	_, _ = st.APITokenCreate(ctx, store.APIToken{UserName: "bob", Via: "oidc", Name: "x", Hash: "hash-2", Role: "viewer"}, time.Hour)
	_, _ = st.APITokenCreate(ctx, store.APIToken{UserName: "ann", Via: "password", Name: "old", Hash: "hash-3", Role: "viewer"}, -time.Second)
	if _, err := st.APITokenCreate(ctx, store.APIToken{UserName: "ann", Via: "password", Name: "dup", Hash: "hash-1", Role: "viewer"}, time.Hour); deploy.ErrorCode(err) != deploy.ECONFLICT {
		t.Errorf("a duplicate hash: %v", err)
	}

	if got, err := st.APITokenByHash(ctx, "hash-1"); err != nil || got.ID != tok.ID {
		t.Errorf("by hash: %+v %v", got, err)
	}
	if _, err := st.APITokenByHash(ctx, "hash-3"); deploy.ErrorCode(err) != deploy.ENOTFOUND {
		t.Errorf("an expired token: %v", err)
	}
	_ = st.APITokenTouch(ctx, tok.ID)
	used, _ := st.APITokenByHash(ctx, "hash-1")
	_ = st.APITokenTouch(ctx, tok.ID)
	again, _ := st.APITokenByHash(ctx, "hash-1")
	if used.LastUsedAt == nil || !used.LastUsedAt.Equal(*again.LastUsedAt) {
		t.Errorf("last used %v then %v", used.LastUsedAt, again.LastUsedAt)
	}
	if l, _ := st.APITokenList(ctx, "ann", 10); len(l) != 2 || l[0].Name != "old" {
		t.Errorf("ann's tokens, newest first, expired included: %+v", l)
	}
	if l, _ := st.APITokenList(ctx, "", 10); len(l) != 3 {
		t.Errorf("all tokens: %d", len(l))
	}
	if _, err := st.APITokenRevoke(ctx, tok.ID, "bob"); deploy.ErrorCode(err) != deploy.ENOTFOUND {
		t.Errorf("bob revoking ann's: %v", err)
	}
	if r, err := st.APITokenRevoke(ctx, tok.ID, "ann"); err != nil || r.RevokedAt == nil {
		t.Errorf("ann revoking hers: %+v %v", r, err)
	}
	if _, err := st.APITokenByHash(ctx, "hash-1"); deploy.ErrorCode(err) != deploy.ENOTFOUND {
		t.Errorf("a revoked token: %v", err)
	}
}

func TestAuditLog(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	e, err := st.AuditInsert(ctx, store.AuditEntry{Actor: "ann", Via: "password", Action: "deployment.rollback",
		Object: "deployment:7", Detail: json.RawMessage(`{"to":6}`), ClientAddr: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID == 0 || string(e.Detail) != `{"to": 6}` || e.At.IsZero() {
		t.Errorf("inserted %+v %s", e, e.Detail)
	}
	if e, _ := st.AuditInsert(ctx, store.AuditEntry{Actor: "system", Action: "x"}); string(e.Detail) != `{}` {
		t.Errorf("no detail: %s", e.Detail)
	}
	for range 5 {
		_, _ = st.AuditInsert(ctx, store.AuditEntry{Actor: "bob", Action: "login"})
	}
	var ids []int64
	before := int64(0)
	for {
		page, err := st.AuditList(ctx, before, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			ids = append(ids, e.ID)
		}
		if len(page) < 3 {
			break
		}
		before = page[len(page)-1].ID
	}
	if len(ids) != 7 {
		t.Fatalf("paged %v", ids)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Errorf("not newest first: %v", ids)
		}
	}
}
