package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"

	"github.com/slipway-dev/slipway/internal/store"
)

// MaxTokenTTL is the longest a user's API token may live.
const MaxTokenTTL = 366 * 24 * time.Hour

// MountAPI mounts, on the /api/v1 router r (which runs Authenticate), the token, session and
// audit routes, each guarded by its own RequireAPI:
//
//	POST   /tokens         {name, role, expires_in} → 201 with the token, shown this once (viewer+, a user)
//	GET    /tokens         the caller's tokens; an admin's sees everyone's (viewer+)
//	DELETE /tokens/{id}    revoke one of the caller's (admin: anyone's) → 204 (viewer+)
//	GET    /sessions       the caller's active sessions; an admin's sees everyone's (viewer+)
//	DELETE /sessions/{id}  revoke one → 204 (viewer+)
//	GET    /audit?before=&limit=  the audit log, newest first (admin)
func (s *Service) MountAPI(r chi.Router) {
	viewer := r.With(s.RequireAPI(RoleViewer))
	viewer.Post("/tokens", s.createToken)
	viewer.Get("/tokens", s.listTokens)
	viewer.Delete("/tokens/{id}", s.revokeToken)
	viewer.Get("/sessions", s.listSessions)
	viewer.Delete("/sessions/{id}", s.revokeSession)
	r.With(s.RequireAPI(RoleAdmin)).Get("/audit", s.listAudit)
}

// Token is a user's API token as the API shows it: never its hash; the token itself only in
// the answer that created it.
type Token struct {
	ID         int64      `json:"id"`
	User       string     `json:"user"`
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	Token      string     `json:"token,omitempty"`
}

func tokenView(t store.APIToken) Token {
	return Token{ID: t.ID, User: t.UserName, Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt,
		ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt}
}

type tokenRequest struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	ExpiresIn string `json:"expires_in"`
}

func (s *Service) createToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, _ := PrincipalFrom(ctx)
	if p.Via == ViaConfigToken {
		writeError(w, http.StatusForbidden, "forbidden",
			"the config's API tokens belong to no user: log in as a user (or use a user's token) to create API tokens")
		return
	}
	var req tokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 || strings.ContainsFunc(req.Name, func(r rune) bool { return !unicode.IsPrint(r) }) {
		writeError(w, http.StatusBadRequest, "invalid", "name: 1 to 100 printable characters")
		return
	}
	role := p.Role
	if req.Role != "" {
		var err error
		if role, err = ParseRole(req.Role); err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "role: "+err.Error())
			return
		}
	}
	if !p.Role.Can(role) {
		writeError(w, http.StatusForbidden, "forbidden",
			fmt.Sprintf("a token's role cannot exceed its creator's: you are %s, not %s", p.Role, role))
		return
	}
	ttl, err := time.ParseDuration(req.ExpiresIn)
	if req.ExpiresIn == "" || err != nil || ttl < time.Minute || ttl > MaxTokenTTL {
		writeError(w, http.StatusBadRequest, "invalid",
			"expires_in: a duration from 1m to 8784h (366 days), like 720h; every token expires")
		return
	}
	random, err := randomString(32)
	if err != nil {
		s.internalError(w, r, "creating api token", err)
		return
	}
	secret := UserTokenPrefix + random
	via := p.Via
	if via == ViaAPIToken {
		// A token made with a token inherits how its user logged in: a password user's stays
		// bound to the config entry.
		if _, ok := s.users[p.Name]; ok {
			via = ViaPassword
		} else {
			via = ViaOIDC
		}
	}
	t, err := s.st.APITokenCreate(ctx, store.APIToken{UserName: p.Name, Via: via, Name: req.Name, Hash: hashHex(secret),
		Role: role.String()}, ttl)
	if err != nil {
		s.internalError(w, r, "creating api token", err)
		return
	}
	s.Audit(ctx, "token.create", fmt.Sprintf("token:%d", t.ID), map[string]any{"name": t.Name, "role": t.Role,
		"expires_at": t.ExpiresAt})
	v := tokenView(t)
	v.Token = secret
	writeJSON(w, http.StatusCreated, v)
}

func (s *Service) listTokens(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	ts, err := s.st.APITokenList(r.Context(), ownerFilter(p), 500)
	if err != nil {
		s.internalError(w, r, "listing api tokens", err)
		return
	}
	out := make([]Token, len(ts))
	for i, t := range ts {
		out[i] = tokenView(t)
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Service) revokeToken(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, _ := PrincipalFrom(ctx)
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "invalid", "id: a token's number")
		return
	}
	t, err := s.st.APITokenRevoke(ctx, id, ownerFilter(p))
	if isNotFound(err) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("you have no token %d", id))
		return
	} else if err != nil {
		s.internalError(w, r, "revoking api token", err)
		return
	}
	s.Audit(ctx, "token.revoke", fmt.Sprintf("token:%d", t.ID), map[string]any{"name": t.Name, "user": t.UserName})
	w.WriteHeader(http.StatusNoContent)
}

// SessionView is a session as the API shows it, by its public id.
type SessionView struct {
	ID         int64     `json:"id"`
	User       string    `json:"user"`
	Role       string    `json:"role"`
	Via        string    `json:"via"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ClientAddr string    `json:"client_addr"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"` // the session of the request
}

func (s *Service) listSessions(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	ss, err := s.st.SessionList(r.Context(), ownerFilter(p), 500)
	if err != nil {
		s.internalError(w, r, "listing sessions", err)
		return
	}
	out := make([]SessionView, len(ss))
	for i, x := range ss {
		out[i] = SessionView{ID: x.PublicID, User: x.UserName, Role: x.Role, Via: x.Via, CreatedAt: x.CreatedAt,
			ExpiresAt: x.ExpiresAt, LastSeenAt: x.LastSeenAt, ClientAddr: x.ClientAddr, UserAgent: x.UserAgent,
			Current: x.PublicID == p.SessionPublicID}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Service) revokeSession(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, _ := PrincipalFrom(ctx)
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, "invalid", "id: a session's number")
		return
	}
	x, err := s.st.SessionRevokePublic(ctx, id, ownerFilter(p))
	if isNotFound(err) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("you have no session %d", id))
		return
	} else if err != nil {
		s.internalError(w, r, "revoking session", err)
		return
	}
	s.Audit(ctx, "session.revoke", fmt.Sprintf("session:%d", x.PublicID), map[string]any{"user": x.UserName})
	w.WriteHeader(http.StatusNoContent)
}

// AuditView is an audit log entry as the API shows it.
type AuditView struct {
	ID         int64           `json:"id"`
	At         time.Time       `json:"at"`
	Actor      string          `json:"actor"`
	Via        string          `json:"via"`
	Action     string          `json:"action"`
	Object     string          `json:"object"`
	Detail     json.RawMessage `json:"detail"`
	ClientAddr string          `json:"client_addr"`
}

func (s *Service) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var before int64
	limit := 50
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "invalid", "before: an entry's id (next_cursor)")
			return
		}
		before = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			writeError(w, http.StatusBadRequest, "invalid", "limit: 1 to 500")
			return
		}
		limit = n
	}
	es, err := s.AuditList(r.Context(), before, limit)
	if err != nil {
		s.internalError(w, r, "listing audit log", err)
		return
	}
	out := make([]AuditView, len(es))
	for i, e := range es {
		out[i] = AuditView(e)
	}
	resp := map[string]any{"entries": out}
	if len(es) == limit {
		resp["next_cursor"] = strconv.FormatInt(es[len(es)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, resp)
}

// ownerFilter is the user whose rows p may see and revoke: its own, or "" (everyone's) for an admin.
func ownerFilter(p Principal) string {
	if p.Role.Can(RoleAdmin) {
		return ""
	}
	return p.Name
}

func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("a JSON body is required")
		}
		return fmt.Errorf("the body is not the JSON expected: %v", err)
	}
	return nil
}

func (s *Service) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal", what+" failed")
}
