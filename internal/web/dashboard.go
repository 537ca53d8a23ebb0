package web

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	assets "github.com/slipway-dev/slipway/web"
)

// DashboardStore is what the dashboard pages read; *store.Store implements it.
type DashboardStore interface {
	DashboardServices(ctx context.Context) ([]store.ServiceState, error)
	DashboardHistory(ctx context.Context, f store.HistoryFilter) ([]store.DeploymentRun, error)
	DashboardDeployment(ctx context.Context, id int64) (store.DeploymentRun, error)
	DeploymentStatus(ctx context.Context, id int64) (deploy.Status, error)
	DeploymentLive(ctx context.Context, repo, service, environment string) (deploy.Deployment, bool, error)
	DeploymentsByRun(ctx context.Context, runID int64) ([]deploy.Deployment, error)
	RunGet(ctx context.Context, id int64) (deploy.Run, error)
	DeploymentLogsTail(ctx context.Context, deploymentID int64, limit int) ([]store.LogLine, bool, error)
	DeploymentLogs(ctx context.Context, deploymentID, after int64, limit int) ([]store.LogLine, error)
	// Listen is store.Store's: the log tails wake on store.ChannelLogs.
	Listen(ctx context.Context, channels []string, fn func(channel, payload string), ready func()) error
}

var _ DashboardStore = (*store.Store)(nil)

// Actions are what a deployer may do from the dashboard; each records who asked. Errors carry a
// domain code (deploy.Error) that StatusFor maps.
type Actions interface {
	// Rollback queues a deployment of what deployment id put live: its image, no build.
	Rollback(ctx context.Context, deploymentID int64, who string) (runID, depID int64, err error)
	// Redeploy queues deployment id's image again to the same service and environment.
	Redeploy(ctx context.Context, deploymentID int64, who string) (runID, depID int64, err error)
	// Cancel cancels a run or deployment (kind store.KindRun or store.KindDeployment).
	Cancel(ctx context.Context, kind string, id int64, who, reason string) (status string, err error)
	// DeployRef queues a run of repo at commit sha of branch (the branch's head when sha is "").
	DeployRef(ctx context.Context, repo, branch, sha, who string) (runID int64, err error)
}

// AuditEntry is one line of the audit log; its Detail is a JSON object.
type AuditEntry = store.AuditEntry

// AuditLister reads the audit log newest first, ids below before (0: from the newest).
type AuditLister interface {
	AuditList(ctx context.Context, before int64, limit int) ([]AuditEntry, error)
}

// DashboardDeps are what the dashboard serves from.
type DashboardDeps struct {
	Store   DashboardStore // required
	Actions Actions        // nil: the action pages answer 503
	Audit   AuditLister    // nil: the audit page says so
	// Config returns the server's configuration for /admin/config, secrets already redacted
	// (config.Secret marshals as "[redacted]"); nil: the page says so.
	Config    func() any
	GitHubURL string       // base of commit links; default https://github.com
	Logger    *slog.Logger // required
	Version   string
	// LogPoll is how often a live tail reads the log without a notification, in case one was
	// lost; default 5s. LogHeartbeat keeps idle streams open through proxies; default 20s.
	LogPoll, LogHeartbeat time.Duration
	// LogStreamMax ends a live tail after this long (the browser reconnects where it was) so a
	// forgotten tab does not hold a stream forever; default 10m.
	LogStreamMax time.Duration
	Now          func() time.Time // default time.Now
}

// Dashboard serves the HTML pages: services, history, deployments with their live logs, runs,
// the actions and the admin pages.
type Dashboard struct {
	st      DashboardStore
	actions Actions
	audit   AuditLister
	config  func() any
	github  string
	logger  *slog.Logger
	version string
	now     func() time.Time
	tmpl    *template.Template
	static  map[string]string // asset name -> URL with its content hash
	hub     *logHub
	poll    time.Duration
	beat    time.Duration
	maxLive time.Duration
}

// NewDashboard builds the dashboard. Run must be running for log tails to wake on new lines at
// once; without it they still see them within LogPoll.
func NewDashboard(d DashboardDeps) *Dashboard {
	db := &Dashboard{st: d.Store, actions: d.Actions, audit: d.Audit, config: d.Config,
		github:  strings.TrimRight(cmp.Or(d.GitHubURL, "https://github.com"), "/"),
		logger:  d.Logger,
		version: d.Version,
		now:     d.Now,
		tmpl:    template.Must(template.ParseFS(assets.FS, "templates/*.html")),
		static:  map[string]string{},
		poll:    cmp.Or(d.LogPoll, 5*time.Second),
		beat:    cmp.Or(d.LogHeartbeat, 20*time.Second),
		maxLive: cmp.Or(d.LogStreamMax, 10*time.Minute),
	}
	if d.Now == nil {
		db.now = time.Now
	}
	db.hub = newLogHub(d.Store, d.Logger)
	for _, name := range []string{"app.css", "app.js"} {
		b, err := fs.ReadFile(assets.FS, "static/"+name)
		if err != nil {
			panic("dashboard asset missing: " + name)
		}
		sum := sha256.Sum256(b)
		db.static[name] = "/static/" + name + "?v=" + hex.EncodeToString(sum[:6])
	}
	return db
}

// Run listens for new log lines and wakes the live tails until ctx ends.
func (d *Dashboard) Run(ctx context.Context) error { return d.hub.run(ctx) }

// Routes mounts the pages. The caller authenticates first: every page needs a viewer, actions a
// deployer, /admin an admin, and each handler checks the role again.
func (d *Dashboard) Routes(r chi.Router) {
	r.Get("/", d.services)
	r.Get("/deployments", d.history)
	r.Get("/deployments/{id}", d.deployment)
	r.Get("/deployments/{id}/logs/stream", d.logStream)
	r.Get("/deployments/{id}/log.txt", d.logText)
	r.Get("/runs/{id}", d.run)
	r.Get("/deployments/{id}/rollback", d.confirmDeployment(actRollback))
	r.Post("/deployments/{id}/rollback", d.actDeployment(actRollback))
	r.Get("/deployments/{id}/redeploy", d.confirmDeployment(actRedeploy))
	r.Post("/deployments/{id}/redeploy", d.actDeployment(actRedeploy))
	r.Get("/deployments/{id}/cancel", d.confirmDeployment(actCancel))
	r.Post("/deployments/{id}/cancel", d.actDeployment(actCancel))
	r.Get("/runs/{id}/cancel", d.confirmRunCancel)
	r.Post("/runs/{id}/cancel", d.actRunCancel)
	r.Get("/deploy", d.deployForm)
	r.Post("/deploy", d.deployRef)
	r.Get("/admin/audit", d.auditPage)
	r.Get("/admin/config", d.configPage)
}

// Static serves /static/*: the stylesheet and script (and the pipeline schema). Anonymous
// clients may read it (the login page uses it). The URLs the pages use carry a content hash,
// so the assets are cached for long.
func (d *Dashboard) Static() http.Handler {
	sub, err := fs.Sub(assets.FS, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		if r.URL.Query().Get("v") != "" {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		files.ServeHTTP(w, r)
	})
}

// Login draws the login form (an auth.LoginRenderer) in the dashboard's look.
func (d *Dashboard) Login(w http.ResponseWriter, r *http.Request, status int, page auth.LoginPage) {
	v := struct {
		Base
		auth.LoginPage
		OIDCHref string
	}{Base: d.base(r, "Log in", ""), LoginPage: page}
	v.Base.Anonymous = true
	if page.Next != "" && localPath(page.Next) {
		v.OIDCHref = auth.OIDCLoginPath + "?next=" + urlQueryEscape(page.Next)
	} else {
		v.Next = ""
		v.OIDCHref = auth.OIDCLoginPath
	}
	d.render(w, r, status, "login.html", v)
}

var _ auth.LoginRenderer = (*Dashboard)(nil).Login

// Base is what every page's layout shows.
type Base struct {
	Title     string
	Nav       string // the active nav entry
	User      string
	Role      string
	CanAct    bool // deployer or admin: show the action buttons
	IsAdmin   bool
	Anonymous bool // the login page: no nav, no user
	CSS, JS   string
	Version   string
}

func (d *Dashboard) base(r *http.Request, title, nav string) Base {
	p, _ := auth.PrincipalFrom(r.Context())
	return Base{Title: title, Nav: nav, User: p.Name, Role: p.Role.String(),
		CanAct: p.Role.Can(auth.RoleDeployer), IsAdmin: p.Role.Can(auth.RoleAdmin),
		CSS: d.static["app.css"], JS: d.static["app.js"], Version: d.version}
}

// allowed answers 403 (or 401 without a principal) unless the request's principal has role want.
func (d *Dashboard) allowed(w http.ResponseWriter, r *http.Request, want auth.Role) (auth.Principal, bool) {
	p, ok := auth.PrincipalFrom(r.Context())
	if !ok || p.Role == auth.RoleNone {
		d.fail(w, r, http.StatusUnauthorized, "Log in to see this page.")
		return p, false
	}
	if !p.Role.Can(want) {
		d.fail(w, r, http.StatusForbidden, "This needs the "+want.String()+" role; you are a "+p.Role.String()+".")
		return p, false
	}
	return p, true
}

// render draws a page into a buffer first, so a template error answers 500, not half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, v any) {
	var buf bytes.Buffer
	if err := d.tmpl.ExecuteTemplate(&buf, name, v); err != nil {
		d.logger.ErrorContext(r.Context(), "rendering page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorView struct {
	Base
	Code    int
	Status  string
	Message string
}

// fail draws the error page with status and a message safe to show.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v := errorView{Base: d.base(r, http.StatusText(status), ""), Code: status, Status: http.StatusText(status), Message: msg}
	d.render(w, r, status, "error.html", v)
}

// failErr draws the error page for err: its domain code picks the status; an internal error's
// cause goes to the log, not to the page.
func (d *Dashboard) failErr(w http.ResponseWriter, r *http.Request, err error) {
	code := StatusFor(err)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		d.logger.ErrorContext(r.Context(), "dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "Something went wrong on the server; the details are in its log."
	}
	d.fail(w, r, code, msg)
}

// idParam reads the {id} path parameter, answering 400 for anything but a positive integer.
// allowedID is allowed, then idParam: the id of a page that needs want.
func (d *Dashboard) allowedID(w http.ResponseWriter, r *http.Request, want auth.Role) (int64, bool) {
	if _, ok := d.allowed(w, r, want); !ok {
		return 0, false
	}
	return d.idParam(w, r)
}

func (d *Dashboard) idParam(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		d.fail(w, r, http.StatusBadRequest, "The id in the address must be a positive integer.")
		return 0, false
	}
	return id, true
}
