// Package web builds Slipway's HTTP router: the webhook, health, metrics, the JSON API and the
// dashboard, behind the logins of internal/auth. Domain error codes map to HTTP status codes in
// exactly one function here.
package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/slipway-dev/slipway/internal/auth"
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
	// MetricsPublic serves /metrics to anonymous clients; otherwise it needs a viewer.
	MetricsPublic bool
	API           API
	Actions       Actions
	// Auth says who a request is; every route but the health checks, the webhook, static
	// assets, the login form and (with MetricsPublic) /metrics needs a principal.
	Auth      *auth.Service
	Dashboard *Dashboard
	Version   string
	Logger    *slog.Logger // required: readiness failures and the API's internal errors go here
	Limits    Limits       // what unauthenticated clients may hold; the zero value takes defaults
}

// NewRouter builds the router. Every state-changing request from a browser must come from the
// server's own pages (http.CrossOriginProtection, by Sec-Fetch-Site and Origin); requests
// without those headers (the webhook, API clients) are not browsers' and pass.
func NewRouter(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(middleware.Recoverer, SecurityHeaders, http.NewCrossOriginProtection().Handler, d.Auth.Authenticate)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// Readiness says ready or not, no more: the cause (the driver's text names the database's
	// user, name and address) goes to the log, not to anonymous clients.
	r.Get("/readyz", func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		if err := d.Ready.Ready(ctx); err != nil {
			d.Logger.WarnContext(ctx, "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	r.Get("/pipeline.schema.json", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/schema+json")
		http.ServeFileFS(w, req, assets.FS, "static/pipeline.schema.json")
	})
	r.Handle("/static/*", d.Dashboard.Static())
	metrics := promhttp.HandlerFor(d.Gatherer, promhttp.HandlerOpts{})
	if !d.MetricsPublic {
		metrics = d.Auth.RequireAPI(auth.RoleViewer)(metrics)
	}
	r.Method(http.MethodGet, "/metrics", metrics)
	// The webhook reads its body before the signature can be checked: bodies in flight share a
	// budget, and must keep arriving.
	r.With(bodyBudget(d.Limits.withDefaults())).Method(http.MethodPost, "/webhooks/github", d.Webhook)

	actions := audited{Actions: d.Actions, auth: d.Auth}
	d.Auth.MountLogin(r, d.Dashboard.Login)
	r.Route("/api/v1", func(r chi.Router) {
		d.Auth.MountAPI(r)
		apiRoutes(r, d.API, actions, d.Auth.RequireAPI, d.Logger)
	})
	r.Group(func(r chi.Router) {
		r.Use(d.Auth.Require(auth.RoleViewer))
		d.Dashboard.Routes(r)
	})
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

// writeError answers an error as {"error": {"code": ..., "message": ...}}: the code is a
// domain code (deploy.E*) or one of the HTTP layer's own (unauthenticated, rate_limited...).
func writeError(w http.ResponseWriter, status int, code, message string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, map[string]body{"error": {Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
