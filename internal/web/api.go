package web

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

// API is what the JSON API reads; *store.Store implements it.
type API interface {
	RunGet(ctx context.Context, id int64) (deploy.Run, error)
	DeploymentsByRun(ctx context.Context, runID int64) ([]deploy.Deployment, error)
	DeploymentGet(ctx context.Context, id int64) (deploy.Deployment, error)
	DeploymentLogs(ctx context.Context, deploymentID, after int64, limit int) ([]store.LogLine, error)
	QueueCancel(ctx context.Context, kind string, id int64) (string, error)
	DeploymentsList(ctx context.Context, f store.DeploymentFilter) ([]deploy.Deployment, error)
	DeploymentsLive(ctx context.Context, repo string) ([]store.Live, error)
}

const (
	defaultPage = 50
	maxPage     = 500
)

// Rollbacker queues a rollback to what a deployment put live.
type Rollbacker interface {
	Rollback(ctx context.Context, deploymentID int64, who string) (runID, newDeploymentID int64, err error)
}

// api serves /api/v1 from the store, the rollbacker and a logger for internal errors.
type api struct {
	store    API
	rollback Rollbacker
	logger   *slog.Logger
}

// apiRoutes mounts /api/v1: read runs and deployments with their logs, cancel, roll back. Every
// call needs one of the configured bearer tokens; with none configured the API answers 401.
// Failed authentications are limited per client by limiter. Internal errors are logged to logger.
func apiRoutes(r chi.Router, st API, rb Rollbacker, tokens [][]byte, limiter *authLimiter, logger *slog.Logger) {
	h := &api{store: st, rollback: rb, logger: logger}
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(bearer(tokens, limiter, logger))
		r.Get("/runs/{id}", h.run)
		r.Get("/deployments", h.history)
		r.Get("/live", h.live)
		r.Get("/deployments/{id}", h.deployment)
		r.Get("/deployments/{id}/logs", h.logs)
		r.Post("/runs/{id}/cancel", h.cancel(store.KindRun))
		r.Post("/deployments/{id}/cancel", h.cancel(store.KindDeployment))
		r.Post("/deployments/{id}/rollback", h.rollbackTo)
	})
}

// run answers a run with its deployments.
func (h *api) run(w http.ResponseWriter, req *http.Request) {
	id, ok := pathID(w, req)
	if !ok {
		return
	}
	run, err := h.store.RunGet(req.Context(), id)
	if err != nil {
		h.error(w, req, err)
		return
	}
	if run.Deployments, err = h.store.DeploymentsByRun(req.Context(), id); err != nil {
		h.error(w, req, err)
		return
	}
	writeJSON(w, http.StatusOK, run)
}

// history answers deployments, newest first: filter by repo, service, environment, status; page
// with the next_cursor of the previous answer (?before=).
func (h *api) history(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	f := store.DeploymentFilter{Repo: q.Get("repo"), Service: q.Get("service"),
		Environment: q.Get("environment"), Status: q.Get("status"), Limit: defaultPage}
	for _, name := range []string{"repo", "service", "environment", "status"} {
		if !filterText(w, name, q.Get(name)) {
			return
		}
	}
	if f.Status != "" && !slices.Contains(deploy.DeploymentStatuses, deploy.Status(f.Status)) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "status must be one of " + joinStatuses(deploy.DeploymentStatuses)})
		return
	}
	var err error
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before <= 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "before must be a positive integer"})
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > maxPage {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "limit must be between 1 and 500"})
			return
		}
	}
	ds, err := h.store.DeploymentsList(req.Context(), f)
	if err != nil {
		h.error(w, req, err)
		return
	}
	page := map[string]any{"deployments": ds}
	if len(ds) == f.Limit {
		page["next_cursor"] = ds[len(ds)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

// live answers what is live, per service and environment, and who put it there.
func (h *api) live(w http.ResponseWriter, req *http.Request) {
	repo := req.URL.Query().Get("repo")
	if !filterText(w, "repo", repo) {
		return
	}
	live, err := h.store.DeploymentsLive(req.Context(), repo)
	if err != nil {
		h.error(w, req, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"live": live})
}

func (h *api) deployment(w http.ResponseWriter, req *http.Request) {
	id, ok := pathID(w, req)
	if !ok {
		return
	}
	d, err := h.store.DeploymentGet(req.Context(), id)
	if err != nil {
		h.error(w, req, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// cancel cancels a run (before it is planned) or a deployment: a queued one at once, a running
// one through its worker's context (the build or rollout stops, and a rollout restores the
// previous version).
func (h *api) cancel(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		id, ok := pathID(w, req)
		if !ok {
			return
		}
		status, err := h.store.QueueCancel(req.Context(), kind, id)
		if err != nil {
			h.error(w, req, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "status": status})
	}
}

// rollbackTo rolls the service back to what deployment {id} put live: a new deployment of that
// image, without a build, through the queue like any other.
func (h *api) rollbackTo(w http.ResponseWriter, req *http.Request) {
	id, ok := pathID(w, req)
	if !ok {
		return
	}
	runID, depID, err := h.rollback.Rollback(req.Context(), id, "api")
	if err != nil {
		h.error(w, req, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"run_id": runID, "deployment_id": depID, "rollback_to": id})
}

func (h *api) logs(w http.ResponseWriter, req *http.Request) {
	id, ok := pathID(w, req)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(req.URL.Query().Get("after"), 10, 64)
	lines, err := h.store.DeploymentLogs(req.Context(), id, after, 5000)
	if err != nil {
		h.error(w, req, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"lines": lines})
}

// error answers err with the status its code maps to. The cause of an internal error goes to the
// log with the request line (never its body or headers), not to the client.
func (h *api) error(w http.ResponseWriter, req *http.Request, err error) {
	code := StatusFor(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		h.logger.ErrorContext(req.Context(), "api request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		msg = "internal error"
	}
	writeJSON(w, code, map[string]string{"error": msg})
}

func pathID(w http.ResponseWriter, req *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(req, "id"), 10, 64)
	if err != nil || id <= 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "id must be a positive integer"})
		return 0, false
	}
	return id, true
}

// filterText answers 400 when a filter holds what PostgreSQL refuses as text (NUL bytes,
// invalid UTF-8): no row can match it, and the query would fail as an internal error.
func filterText(w http.ResponseWriter, name, v string) bool {
	if utf8.ValidString(v) && !strings.ContainsRune(v, 0) {
		return true
	}
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": name + " must be UTF-8 text without NUL bytes"})
	return false
}

func joinStatuses(ss []deploy.Status) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// bearer admits requests with one of tokens. Each failure is logged with the client's address
// (never what it sent) and counted against it; a client past its allowance gets 429, its token
// unchecked, until its allowance refills.
func bearer(tokens [][]byte, limiter *authLimiter, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			client := clientAddr(req)
			if limited, news := limiter.limited(client); limited {
				if news {
					logger.WarnContext(req.Context(), "api client rate-limited after failed authentications",
						"client_addr", client, "retry_after_s", limiter.retryAfter())
				}
				w.Header().Set("Retry-After", limiter.retryAfter())
				writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "too many failed authentications, retry later"})
				return
			}
			got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
			reason := "no bearer token"
			if ok {
				for _, t := range tokens {
					if subtle.ConstantTimeCompare([]byte(got), t) == 1 {
						next.ServeHTTP(w, req)
						return
					}
				}
				reason = "unknown token"
			}
			logAuthFailure(logger, req, client, reason)
			limiter.fail(client)
			w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "a valid API token is required"})
		})
	}
}
