package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

// API is what the JSON API reads; *store.Store implements it.
type API interface {
	RunGet(ctx context.Context, id int64) (deploy.Run, error)
	DeploymentsByRun(ctx context.Context, runID int64) ([]deploy.Deployment, error)
	DeploymentGet(ctx context.Context, id int64) (deploy.Deployment, error)
	DeploymentLogs(ctx context.Context, deploymentID, after int64, limit int) ([]store.LogLine, error)
	DeploymentsList(ctx context.Context, f store.DeploymentFilter) ([]deploy.Deployment, error)
	DeploymentsLive(ctx context.Context, repo string) ([]store.Live, error)
}

const (
	defaultPage = 50
	maxPage     = 500
)

// api serves /api/v1 from the store, the actions and a logger for internal errors.
type api struct {
	store   API
	actions Actions
	logger  *slog.Logger
}

// apiRoutes mounts /api/v1 on r: read runs and deployments with their logs as a viewer; cancel,
// roll back, redeploy and deploy as a deployer (require answers 401 or 403 as JSON). Internal
// errors are logged to logger.
func apiRoutes(r chi.Router, st API, actions Actions, require func(auth.Role) func(http.Handler) http.Handler, logger *slog.Logger) {
	h := &api{store: st, actions: actions, logger: logger}
	viewer := r.With(require(auth.RoleViewer))
	viewer.Get("/runs/{id}", h.run)
	viewer.Get("/deployments", h.history)
	viewer.Get("/live", h.live)
	viewer.Get("/deployments/{id}", h.deployment)
	viewer.Get("/deployments/{id}/logs", h.logs)
	viewer.Get("/openapi.json", serveOpenAPI)
	deployer := r.With(require(auth.RoleDeployer))
	deployer.Post("/runs/{id}/cancel", h.cancel(store.KindRun))
	deployer.Post("/deployments/{id}/cancel", h.cancel(store.KindDeployment))
	deployer.Post("/deployments/{id}/rollback", h.again(Actions.Rollback, "rollback_to"))
	deployer.Post("/deployments/{id}/redeploy", h.again(Actions.Redeploy, "redeploy_of"))
	deployer.Post("/deploy", h.deployRef)
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
		writeError(w, http.StatusBadRequest, deploy.EINVALID, "status must be one of "+joinStatuses(deploy.DeploymentStatuses))
		return
	}
	var err error
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before <= 0 {
			writeError(w, http.StatusBadRequest, deploy.EINVALID, "before must be a positive integer")
			return
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > maxPage {
			writeError(w, http.StatusBadRequest, deploy.EINVALID, "limit must be between 1 and 500")
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

// cancel cancels a run (before it is planned, or through the deployments it planned) or a
// deployment: a queued one at once, a running one through its worker's context (the build or
// rollout stops, and a rollout restores the previous version). The body may give a reason:
// {"reason": "..."}.
func (h *api) cancel(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		id, ok := pathID(w, req)
		if !ok {
			return
		}
		var body struct {
			Reason string `json:"reason"`
		}
		if !decodeBody(w, req, &body, true) {
			return
		}
		status, err := h.actions.Cancel(req.Context(), kind, id, who(req), body.Reason)
		if err != nil {
			h.error(w, req, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"id": id, "status": status})
	}
}

// again queues deployment {id}'s image once more, by act (a rollback or a redeploy): a new
// deployment without a build, through the queue like any other.
func (h *api) again(act func(Actions, context.Context, int64, string) (int64, int64, error), field string) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		id, ok := pathID(w, req)
		if !ok {
			return
		}
		runID, depID, err := act(h.actions, req.Context(), id, who(req))
		if err != nil {
			h.error(w, req, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]any{"run_id": runID, "deployment_id": depID, field: id})
	}
}

// deployRef queues a run of a repository's branch, at its head or at a given commit:
// {"repo": "owner/name", "branch": "main", "sha": "<40 hex, optional>"}.
func (h *api) deployRef(w http.ResponseWriter, req *http.Request) {
	var body struct {
		Repo   string `json:"repo"`
		Branch string `json:"branch"`
		SHA    string `json:"sha"`
	}
	if !decodeBody(w, req, &body, false) {
		return
	}
	runID, err := h.actions.DeployRef(req.Context(), body.Repo, body.Branch, body.SHA, who(req))
	if err != nil {
		h.error(w, req, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"run_id": runID})
}

// who names the principal a request acts as, for the history.
func who(req *http.Request) string {
	if p, ok := auth.PrincipalFrom(req.Context()); ok && p.Name != "" {
		return p.Name
	}
	return "api"
}

// decodeBody reads a small JSON object into v; an empty body is accepted when optional.
func decodeBody(w http.ResponseWriter, req *http.Request, v any, optional bool) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 64<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil || (optional && errors.Is(err, io.EOF)) {
		return true
	}
	writeError(w, http.StatusBadRequest, deploy.EINVALID, "the body must be a JSON object: "+err.Error())
	return false
}

func (h *api) logs(w http.ResponseWriter, req *http.Request) {
	id, ok := pathID(w, req)
	if !ok {
		return
	}
	var after int64
	if v := req.URL.Query().Get("after"); v != "" {
		var err error
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			writeError(w, http.StatusBadRequest, deploy.EINVALID, "after must be a line id (a non-negative integer)")
			return
		}
	}
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
	status := StatusFor(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		h.logger.ErrorContext(req.Context(), "api request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		msg = "internal error"
	}
	writeError(w, status, deploy.ErrorCode(err), msg)
}

func pathID(w http.ResponseWriter, req *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(req, "id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, deploy.EINVALID, "id must be a positive integer")
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
	writeError(w, http.StatusBadRequest, deploy.EINVALID, name+" must be UTF-8 text without NUL bytes")
	return false
}

func joinStatuses(ss []deploy.Status) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}
