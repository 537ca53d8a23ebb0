// Package web builds Slipway's HTTP router: the webhook, health, metrics and (later) the API and
// dashboard. Domain error codes map to HTTP status codes in exactly one function here.
package web

import (
	"context"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipway-dev/slipway/internal/deploy"
	assets "github.com/slipway-dev/slipway/web"
)

// Readiness reports whether the database answers and holds the current schema.
type Readiness interface {
	Ready(ctx context.Context) error
}

// Deps are what the router serves.
type Deps struct {
	Webhook  http.Handler
	Ready    Readiness
	Gatherer prometheus.Gatherer
	API      API
	Rollback Rollbacker
	Tokens   [][]byte // API bearer tokens
	Version  string
	Logger   *slog.Logger // required: readiness failures and the API's internal errors go here
	Limits   Limits       // what unauthenticated clients may hold; the zero value takes defaults
}

var pages = template.Must(template.ParseFS(assets.FS, "templates/*.html"))

// NewRouter builds the router.
func NewRouter(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Readiness says ready or not, no more: the cause (the driver's text names the database's
	// user, name and address) goes to the log, not to anonymous clients.
	ready := func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := d.Ready.Ready(ctx); err != nil {
			d.Logger.WarnContext(ctx, "not ready", "err", err)
			return false
		}
		return true
	}
	r.Get("/readyz", func(w http.ResponseWriter, req *http.Request) {
		if !ready(req.Context()) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	r.Get("/", func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		page := struct {
			Version string
			Ready   bool
		}{Version: d.Version, Ready: ready(ctx)}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := pages.ExecuteTemplate(w, "index.html", page); err != nil {
			d.Logger.ErrorContext(ctx, "rendering index", "err", err)
		}
	})
	r.Get("/pipeline.schema.json", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/schema+json")
		http.ServeFileFS(w, req, assets.FS, "static/pipeline.schema.json")
	})
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{}))
	// The webhook reads its body before the signature can be checked: bodies in flight share a
	// budget, and must keep arriving.
	limits := d.Limits.withDefaults()
	r.With(bodyBudget(limits)).Method(http.MethodPost, "/webhooks/github", d.Webhook)
	apiRoutes(r, d.API, d.Rollback, d.Tokens, newAuthLimiter(limits), d.Logger)
	return r
}

// StatusFor maps a domain error code to an HTTP status code: the one place that does.
func StatusFor(err error) int {
	switch deploy.ErrorCode(err) {
	case deploy.ENOTFOUND:
		return http.StatusNotFound
	case deploy.EINVALID:
		return http.StatusBadRequest
	case deploy.ECONFLICT:
		return http.StatusConflict
	case deploy.EFORBIDDEN:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
