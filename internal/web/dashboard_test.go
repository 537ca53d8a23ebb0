package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/internal/web"
)

// fakeActions records what the dashboard asked for.
type fakeActions struct {
	mu    sync.Mutex
	calls []string
}

func (a *fakeActions) record(s string) {
	a.mu.Lock()
	a.calls = append(a.calls, s)
	a.mu.Unlock()
}

func (a *fakeActions) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

func (a *fakeActions) Rollback(_ context.Context, id int64, who string) (int64, int64, error) {
	a.record(fmt.Sprintf("rollback %d by %s", id, who))
	return 900, 901, nil
}

func (a *fakeActions) Redeploy(_ context.Context, id int64, who string) (int64, int64, error) {
	a.record(fmt.Sprintf("redeploy %d by %s", id, who))
	if id == 404 {
		return 0, 0, deploy.Errorf(deploy.ECONFLICT, "deployment %d is <b>not</b> live", id)
	}
	return 902, 903, nil
}

func (a *fakeActions) Cancel(_ context.Context, kind string, id int64, who, reason string) (string, error) {
	a.record(fmt.Sprintf("cancel %s %d by %s: %s", kind, id, who, reason))
	return "cancelled", nil
}

func (a *fakeActions) DeployRef(_ context.Context, repo, branch, sha, who string) (int64, error) {
	a.record(fmt.Sprintf("deploy %s %s %s by %s", repo, branch, sha, who))
	return 904, nil
}

type fakeAudit struct{}

func (fakeAudit) AuditList(_ context.Context, before int64, limit int) ([]web.AuditEntry, error) {
	return []web.AuditEntry{{ID: 7, At: time.Now(), Actor: "ann", Via: "password", Action: "rollback",
		Object: "deployment 3", Detail: json.RawMessage(`{"reason": "` + xssScript + `"}`), ClientAddr: "192.0.2.1"}}, nil
}

const (
	xssScript = `<script>alert(1)</script>`
	xssImg    = `"><img src=x onerror=alert(1)>`
	liveSHA   = "c0ffee1234567890c0ffee1234567890c0ffee12"
)

type dashFixture struct {
	st      *store.Store
	d       *web.Dashboard
	h       http.Handler
	actions *fakeActions
}

func newDashFixture(t *testing.T) *dashFixture {
	t.Helper()
	st := testenv.Store(t)
	acts := &fakeActions{}
	d := web.NewDashboard(web.DashboardDeps{Store: st, Actions: acts, Audit: fakeAudit{},
		Config: func() any { return map[string]string{"webhook_secret": "[redacted]", "note": xssScript} },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test",
		// Only a notification may wake a live tail in these tests.
		LogPoll: time.Hour, LogHeartbeat: time.Hour})
	r := chi.NewRouter()
	r.Use(web.SecurityHeaders)
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if role := req.Header.Get("X-Test-Role"); role != "" {
				ro, err := auth.ParseRole(role)
				if err != nil {
					t.Errorf("role %q: %v", role, err)
				}
				req = req.WithContext(auth.WithPrincipal(req.Context(), auth.Principal{Name: "ann-" + role, Role: ro, Via: "password"}))
			}
			next.ServeHTTP(w, req)
		})
	})
	d.Routes(r)
	r.Handle("/static/*", d.Static())
	return &dashFixture{st: st, d: d, h: r, actions: acts}
}

func (f *dashFixture) do(t *testing.T, method, target, role string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if role != "" {
		req.Header.Set("X-Test-Role", role)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	return w
}

func (f *dashFixture) page(t *testing.T, target, role string) string {
	t.Helper()
	w := f.do(t, http.MethodGet, target, role, nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s as %s: %d\n%s", target, role, w.Code, w.Body.String())
	}
	return w.Body.String()
}

// dashDep is a deployment to seed with its run.
type dashDep struct {
	repo, service, env, status, sha, branch, trigger, pusher, message, errMsg string
}

func (f *dashFixture) seed(t *testing.T, d dashDep) (runID, depID int64) {
	t.Helper()
	ctx := context.Background()
	d.repo, d.env, d.sha = cmpOr(d.repo, "acme/app"), cmpOr(d.env, "prod"), cmpOr(d.sha, liveSHA)
	d.branch, d.trigger, d.pusher = cmpOr(d.branch, "main"), cmpOr(d.trigger, "push"), cmpOr(d.pusher, "ann")
	runID, err := f.st.RunCreate(ctx, deploy.Run{Trigger: d.trigger, Repo: d.repo, Ref: "refs/heads/" + d.branch,
		Branch: d.branch, BeforeSHA: "1111111111111111111111111111111111111111", AfterSHA: d.sha, Pusher: d.pusher, Message: d.message})
	if err != nil {
		t.Fatal(err)
	}
	err = f.st.Pool().QueryRow(ctx, `INSERT INTO deployments (run_id, repo, service, environment, commit_sha, status, error,
			image_ref, image_digest, platform, claimed_at, building_at, pushing_at, deploying_at, finished_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'reg.example/app@sha256:' || md5($5) || md5($5), 'sha256:' || md5($5) || md5($5),
			'docker', now() - interval '50 s', now() - interval '50 s', now() - interval '30 s', now() - interval '20 s',
			CASE WHEN $6 IN ('queued', 'building', 'pushing', 'deploying') THEN NULL ELSE now() END, now() - interval '60 s')
		RETURNING id`, runID, d.repo, d.service, d.env, d.sha, cmpOr(d.status, "succeeded"), d.errMsg).Scan(&depID)
	if err != nil {
		t.Fatal(err)
	}
	return runID, depID
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func TestDashboardServicesPage(t *testing.T) {
	f := newDashFixture(t)
	_, live := f.seed(t, dashDep{service: "api", message: "Fix the login\n\nlong body", pusher: "bob"})
	f.seed(t, dashDep{service: "api", status: "queued", sha: "abcdef0000000000000000000000000000000000"})
	f.seed(t, dashDep{service: "worker", status: "failed", errMsg: "build failed: exit 2"})
	w := f.do(t, http.MethodGet, "/", "viewer", nil)
	body := w.Body.String()
	if w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	for _, want := range []string{
		`href="https://github.com/acme/app/commit/` + liveSHA + `"`, ">c0ffee1<", "Fix the login", "push by bob to main",
		fmt.Sprintf(`href="/deployments/%d"`, live), "1 queued", "✗", "failed", "build failed: exit 2",
		"nothing live yet", `<time datetime="`, `title="20`, "ann-viewer", `action="/logout"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("services page lacks %q", want)
		}
	}
	if strings.Contains(body, "long body") {
		t.Error("the services page shows more than the message's first line")
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if strings.Contains(body, "style=") || regexp.MustCompile(`<script>|\son[a-z]+=`).MatchString(body) {
		t.Error("the page has inline script, style or event handlers: CSP forbids them")
	}
	// The deployer and admin see the Deploy and Admin entries; a viewer does not.
	if strings.Contains(body, `href="/deploy"`) || strings.Contains(body, `href="/admin/audit"`) {
		t.Error("a viewer's nav offers Deploy or Admin")
	}
	if admin := f.page(t, "/", "admin"); !strings.Contains(admin, `href="/deploy"`) || !strings.Contains(admin, `href="/admin/audit"`) {
		t.Error("an admin's nav lacks Deploy or Admin")
	}
	// The assets the page names are served.
	css := regexp.MustCompile(`href="(/static/app\.css\?v=[0-9a-f]+)"`).FindStringSubmatch(body)
	if css == nil {
		t.Fatal("no stylesheet link")
	}
	if w := f.do(t, http.MethodGet, html.UnescapeString(css[1]), "", nil); w.Code != 200 || !strings.Contains(w.Body.String(), "prefers-color-scheme") {
		t.Errorf("stylesheet: %d", w.Code)
	}
}

// Everything a push controls is shown as text, never as markup, on every page and in the log stream.
func TestDashboardEscapesPushFields(t *testing.T) {
	f := newDashFixture(t)
	runID, id := f.seed(t, dashDep{service: "api" + xssScript, env: "prod" + xssImg, branch: "main" + xssImg,
		pusher: xssScript + xssImg, message: xssScript + "\n" + xssImg, status: "failed", errMsg: "exit " + xssScript + xssImg})
	if _, err := f.st.Pool().Exec(context.Background(), `INSERT INTO deployment_logs (deployment_id, stream, line)
		VALUES ($1, 'stdout', $2), ($1, $3, 'x')`, id, xssScript+xssImg, "std"+xssImg); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"/", "/deployments", fmt.Sprintf("/deployments/%d", id), fmt.Sprintf("/runs/%d", runID),
		"/deployments?branch=" + url.QueryEscape("main"+xssImg), fmt.Sprintf("/deployments/%d/rollback", id),
		fmt.Sprintf("/deployments/%d/cancel", id), "/admin/audit", "/admin/config"} {
		body := f.page(t, target, "admin")
		for _, raw := range []string{"<script>alert", "<img src=x", "onerror=alert(1)>"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s holds %q as markup", target, raw)
			}
		}
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Errorf("%s does not show the script as text", target)
		}
	}
	w := f.do(t, http.MethodGet, fmt.Sprintf("/deployments/%d/logs/stream", id), "viewer", nil)
	if strings.Contains(w.Body.String(), "<script>") || strings.Contains(w.Body.String(), "<img") {
		t.Errorf("log stream carries markup: %s", w.Body.String())
	}
	if w := f.do(t, http.MethodGet, fmt.Sprintf("/deployments/%d/log.txt", id), "viewer", nil); w.Header().Get("Content-Type") != "text/plain; charset=utf-8" ||
		w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("plain log served as %q", w.Header().Get("Content-Type"))
	}
}

func TestDashboardDeploymentPage(t *testing.T) {
	f := newDashFixture(t)
	_, old := f.seed(t, dashDep{service: "api"})
	runID, failed := f.seed(t, dashDep{service: "api", status: "failed", errMsg: "rollout failed: container exited with code 3",
		message: "Break things", pusher: "cy"})
	body := f.page(t, fmt.Sprintf("/deployments/%d", failed), "deployer")
	reason := strings.Index(body, "rollout failed: container exited with code 3")
	if reason < 0 || reason > strings.Index(body, "Stages") {
		t.Error("the failure reason is not at the top")
	}
	for _, want := range []string{"✗", "failed", "push by cy to main", fmt.Sprintf(`href="/runs/%d"`, runID),
		"https://github.com/acme/app/commit/" + liveSHA, "build", "push", "deploy", "20 s", "10 s", "No output yet"} {
		if !strings.Contains(body, want) {
			t.Errorf("deployment page lacks %q", want)
		}
	}
	// A redeploy of a failed deployment is not offered; its cancel neither (it is final).
	if strings.Contains(body, "/redeploy") || strings.Contains(body, "/cancel") {
		t.Error("actions offered on a failed deployment")
	}
	live := f.page(t, fmt.Sprintf("/deployments/%d", old), "deployer")
	if !strings.Contains(live, fmt.Sprintf(`href="/deployments/%d/redeploy"`, old)) {
		t.Error("the live deployment offers no redeploy")
	}

	// A rollback (its image known from the start) passed no build or push stage.
	rb := f.seedRollback(t, old)
	rbBody := f.page(t, fmt.Sprintf("/deployments/%d", rb), "viewer")
	if strings.Contains(rbBody, "<strong>build</strong>") || strings.Contains(rbBody, "<strong>push</strong>") ||
		!strings.Contains(rbBody, "<strong>deploy</strong>") {
		t.Error("a rollback shows a build or push stage, or no deploy stage")
	}

	for target, code := range map[string]int{"/deployments/999999": 404, "/deployments/abc": 400, "/runs/999999": 404, "/deployments/0": 400} {
		w := f.do(t, http.MethodGet, target, "viewer", nil)
		if w.Code != code || !strings.Contains(w.Body.String(), `<nav aria-label="Main">`) {
			t.Errorf("%s: %d, want %d in the layout", target, w.Code, code)
		}
	}
}

// seedRollback records a rollback to deployment to as the flow does: its image known, no build.
func (f *dashFixture) seedRollback(t *testing.T, to int64) int64 {
	t.Helper()
	ctx := context.Background()
	runID, err := f.st.RunCreate(ctx, deploy.Run{Trigger: "rollback", Repo: "acme/app", AfterSHA: liveSHA, Pusher: "dee"})
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	err = f.st.Pool().QueryRow(ctx, `INSERT INTO deployments (run_id, repo, service, environment, commit_sha, status,
			image_digest, spec, claimed_at, deploying_at, finished_at)
		VALUES ($1, 'acme/app', 'api', 'prod', $2, 'succeeded', 'sha256:1', jsonb_build_object('rollback_of', $3::bigint),
			now(), now(), now()) RETURNING id`, runID, liveSHA, to).Scan(&id)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestDashboardRunPage(t *testing.T) {
	f := newDashFixture(t)
	runID, _ := f.seed(t, dashDep{service: "api", message: "Ship it"})
	skipped, err := f.st.RunCreate(context.Background(), deploy.Run{Trigger: "push", Repo: "acme/app", Branch: "main", AfterSHA: liveSHA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Pool().Exec(context.Background(), `UPDATE runs SET status = 'skipped',
		error = 'no service changed', skipped = '[{"service": "web", "reason": "paths did not change"}]' WHERE id = $1`, skipped); err != nil {
		t.Fatal(err)
	}
	body := f.page(t, fmt.Sprintf("/runs/%d", runID), "viewer")
	for _, want := range []string{"Ship it", "api", "compare/1111111111111111111111111111111111111111..." + liveSHA} {
		if !strings.Contains(body, want) {
			t.Errorf("run page lacks %q", want)
		}
	}
	body = f.page(t, fmt.Sprintf("/runs/%d", skipped), "viewer")
	for _, want := range []string{"no service changed", "paths did not change", "web", "queued no deployment"} {
		if !strings.Contains(body, want) {
			t.Errorf("skipped run page lacks %q", want)
		}
	}
}

// rowIDs are the deployment ids a history page lists, in order.
func rowIDs(t *testing.T, body string) []int64 {
	var ids []int64
	for _, m := range regexp.MustCompile(`<a href="/deployments/(\d+)">#\d+</a>`).FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		ids = append(ids, id)
	}
	return ids
}

func TestDashboardHistoryPage(t *testing.T) {
	f := newDashFixture(t)
	var all []int64
	for i := range 60 {
		_, id := f.seed(t, dashDep{service: fmt.Sprintf("s%d", i%3), branch: []string{"main", "dev"}[i%2],
			trigger: []string{"push", "push", "rollback"}[i%3], sha: fmt.Sprintf("%040x", i+1)})
		all = append([]int64{id}, all...)
	}
	first := f.page(t, "/deployments", "viewer")
	page1 := rowIDs(t, first)
	if !slices.Equal(page1, all[:50]) {
		t.Fatalf("first page %v, want %v", page1, all[:50])
	}
	older := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(first)
	if older == nil {
		t.Fatal("no link to older deployments")
	}
	// A deployment queued meanwhile neither shifts the next page nor shows on it.
	_, newer := f.seed(t, dashDep{service: "s0", status: "queued"})
	page2 := rowIDs(t, f.page(t, html.UnescapeString(older[1]), "viewer"))
	if !slices.Equal(page2, all[50:]) {
		t.Errorf("second page %v, want %v", page2, all[50:])
	}
	if !slices.Equal(rowIDs(t, f.page(t, "/deployments", "viewer"))[:2], []int64{newer, all[0]}) {
		t.Error("the first page does not start with the new deployment")
	}

	for query, want := range map[string]int{
		"service=s1":                         20,
		"branch=dev":                         30,
		"trigger=rollback":                   20,
		"commit=" + fmt.Sprintf("%040x", 16): 1,
		"commit=C0FFEE":                      1, // the queued one; upper case is accepted
		"status=queued":                      1,
		"repo=acme%2Fapp&service=s2&environment=prod&status=succeeded&branch=main": 10,
	} {
		if got := len(rowIDs(t, f.page(t, "/deployments?"+query, "viewer"))); got != want {
			t.Errorf("%s: %d rows, want %d", query, got, want)
		}
	}
	for _, query := range []string{"status=bogus", "status=planning", "commit=xyz1", "commit=ab", "before=-1", "before=x",
		"repo=acme%00", "service=%ff", "branch=" + strings.Repeat("b", 201)} {
		w := f.do(t, http.MethodGet, "/deployments?"+query, "viewer", nil)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `<nav aria-label="Main">`) {
			t.Errorf("%s: %d, want 400 in the layout", query, w.Code)
		}
	}
}

// A viewer reads but never acts: no action is offered, and each action's pages and posts refuse
// it (403) even when called directly; without a principal every page answers 401.
func TestDashboardRoles(t *testing.T) {
	f := newDashFixture(t)
	runID, id := f.seed(t, dashDep{service: "api"})
	_, queued := f.seed(t, dashDep{service: "api", status: "queued"})
	page := f.page(t, fmt.Sprintf("/deployments/%d", queued), "viewer")
	for _, action := range []string{"/rollback", "/redeploy", "/cancel"} {
		if strings.Contains(page, action) {
			t.Errorf("a viewer is offered %s", action)
		}
	}
	if page := f.page(t, fmt.Sprintf("/deployments/%d", queued), "deployer"); !strings.Contains(page, fmt.Sprintf(`href="/deployments/%d/cancel"`, queued)) {
		t.Error("a deployer is not offered to cancel a queued deployment")
	}
	posts := map[string]url.Values{
		fmt.Sprintf("/deployments/%d/rollback", id):   {},
		fmt.Sprintf("/deployments/%d/redeploy", id):   {},
		fmt.Sprintf("/deployments/%d/cancel", queued): {"reason": {"no"}},
		fmt.Sprintf("/runs/%d/cancel", runID):         {"reason": {"no"}},
		"/deploy":                                     {"repo": {"acme/app"}, "branch": {"main"}},
	}
	for target, form := range posts {
		for role, code := range map[string]int{"": 401, "viewer": 403} {
			if w := f.do(t, http.MethodPost, target, role, form); w.Code != code {
				t.Errorf("POST %s as %q: %d, want %d", target, role, w.Code, code)
			}
			if w := f.do(t, http.MethodGet, target, role, nil); w.Code != code {
				t.Errorf("GET %s as %q: %d, want %d", target, role, w.Code, code)
			}
		}
	}
	if calls := f.actions.Calls(); len(calls) != 0 {
		t.Fatalf("actions ran for a viewer: %v", calls)
	}
	for _, target := range []string{"/", "/deployments", fmt.Sprintf("/deployments/%d", id), fmt.Sprintf("/runs/%d", runID),
		fmt.Sprintf("/deployments/%d/logs/stream", id), fmt.Sprintf("/deployments/%d/log.txt", id), "/admin/audit", "/admin/config"} {
		if w := f.do(t, http.MethodGet, target, "", nil); w.Code != 401 {
			t.Errorf("GET %s anonymous: %d, want 401", target, w.Code)
		}
	}
	for _, target := range []string{"/admin/audit", "/admin/config"} {
		if w := f.do(t, http.MethodGet, target, "deployer", nil); w.Code != 403 {
			t.Errorf("GET %s as deployer: %d, want 403", target, w.Code)
		}
	}
	cfg := f.page(t, "/admin/config", "admin")
	if !strings.Contains(cfg, "[redacted]") {
		t.Error("the config page does not show the redacted secret")
	}

	// A deployer acts: each post runs its action as the deployer and redirects to what it made.
	for target, want := range map[string]struct{ call, location string }{
		fmt.Sprintf("/deployments/%d/rollback", id):   {fmt.Sprintf("rollback %d by ann-deployer", id), "/deployments/901"},
		fmt.Sprintf("/deployments/%d/redeploy", id):   {fmt.Sprintf("redeploy %d by ann-deployer", id), "/deployments/903"},
		fmt.Sprintf("/deployments/%d/cancel", queued): {fmt.Sprintf("cancel deployment %d by ann-deployer: no", queued), fmt.Sprintf("/deployments/%d", queued)},
		fmt.Sprintf("/runs/%d/cancel", runID):         {fmt.Sprintf("cancel run %d by ann-deployer: no", runID), fmt.Sprintf("/runs/%d", runID)},
		"/deploy":                                     {"deploy acme/app main  by ann-deployer", "/runs/904"},
	} {
		f.actions.calls = nil
		w := f.do(t, http.MethodPost, target, "deployer", posts[target])
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != want.location {
			t.Errorf("POST %s: %d to %q, want 303 to %s", target, w.Code, w.Header().Get("Location"), want.location)
		}
		if calls := f.actions.Calls(); !slices.Equal(calls, []string{want.call}) {
			t.Errorf("POST %s ran %v, want %q", target, calls, want.call)
		}
		if w := f.do(t, http.MethodGet, target, "deployer", nil); w.Code != 200 || !strings.Contains(w.Body.String(), `method="post"`) {
			t.Errorf("GET %s (confirm) as deployer: %d", target, w.Code)
		}
	}
	// The confirmation of a deploy shows what is live; an action's error shows with its status.
	if page := f.page(t, "/deploy?repo=acme%2Fapp&branch=main", "deployer"); !strings.Contains(page, "c0ffee1") || !strings.Contains(page, `name="branch" value="main"`) {
		t.Error("the deploy confirmation lacks what is live or the branch")
	}
	if w := f.do(t, http.MethodGet, "/deploy?repo=other%2Frepo&branch=main", "deployer", nil); w.Code != 400 {
		t.Errorf("deploy of an unknown repository: %d, want 400", w.Code)
	}
	if w := f.do(t, http.MethodPost, "/deployments/404/redeploy", "deployer", url.Values{}); w.Code != 409 ||
		!strings.Contains(w.Body.String(), "is &lt;b&gt;not&lt;/b&gt; live") {
		t.Errorf("a refused redeploy: %d %s", w.Code, w.Body.String())
	}
	if w := f.do(t, http.MethodPost, fmt.Sprintf("/deployments/%d/cancel", queued), "deployer",
		url.Values{"reason": {strings.Repeat("x", 501)}}); w.Code != 400 {
		t.Errorf("a reason too long: %d, want 400", w.Code)
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	id, event, data string
}

// sseStream reads events from a live tail until it ends.
type sseStream struct {
	events chan sseEvent
	cancel context.CancelFunc
	done   chan struct{}
}

func openStream(t *testing.T, srv *httptest.Server, path, lastID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test-Role", "viewer")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{events: make(chan sseEvent, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.events)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev != (sseEvent{}) {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				ev.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-s.done })
	return s
}

// next returns the next event; a hung stream fails the test after a long deadline.
func (s *sseStream) next(t *testing.T) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatal("stream ended")
		}
		return ev
	case <-time.After(2 * time.Minute):
		t.Fatal("no event within 2 minutes")
	}
	return sseEvent{}
}

func TestDashboardLogStream(t *testing.T) {
	f := newDashFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening := make(chan error, 1)
	go func() { listening <- f.d.Run(ctx) }()
	defer func() { cancel(); <-listening }()
	<-web.ListenReady(f.d)
	srv := httptest.NewServer(f.h)
	defer srv.Close()

	_, id := f.seed(t, dashDep{service: "api", status: "building"})
	if _, err := f.st.Pool().Exec(ctx, `UPDATE deployments SET lease_owner = 'w', attempt = 1 WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	claim := store.Claim{Kind: store.KindDeployment, ID: id, Owner: "w", Attempt: 1}
	n := 0
	appendLines := func(k int) {
		t.Helper()
		var lines []store.LogLine
		for range k {
			n++
			lines = append(lines, store.LogLine{Stream: "stdout", Line: fmt.Sprintf("line %d", n), CreatedAt: time.Now()})
		}
		if err := f.st.DeploymentLogsAppend(ctx, claim, lines); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var lastID string
	take := func(s *sseStream, k int) {
		t.Helper()
		for range k {
			ev := s.next(t)
			if ev.event != "" || ev.id == "" {
				t.Fatalf("event %+v, want a log line", ev)
			}
			if lastID != "" {
				prev, _ := strconv.ParseInt(lastID, 10, 64)
				if cur, _ := strconv.ParseInt(ev.id, 10, 64); cur <= prev {
					t.Fatalf("id %s after %s", ev.id, lastID)
				}
			}
			lastID = ev.id
			got = append(got, ev.data)
		}
	}

	appendLines(3)
	path := fmt.Sprintf("/deployments/%d/logs/stream", id)
	s := openStream(t, srv, path+"?after=0", "")
	take(s, 3)
	appendLines(2) // the NOTIFY wakes the stream: polling is off
	take(s, 2)
	s.cancel() // the connection drops
	<-s.done
	appendLines(2)
	s = openStream(t, srv, path+"?after=0", lastID) // Last-Event-ID wins over ?after
	take(s, 2)
	if err := f.st.QueueFinish(ctx, claim, "succeeded", ""); err != nil {
		t.Fatal(err)
	}
	if ev := s.next(t); ev.event != "end" || ev.data != "succeeded" {
		t.Fatalf("event %+v, want end", ev)
	}
	if _, ok := <-s.events; ok {
		t.Error("the stream goes on after its end")
	}
	var want []string
	for i := 1; i <= 7; i++ {
		want = append(want, fmt.Sprintf(`{"s":"stdout","l":"line %d",`, i))
	}
	for i := range got {
		if i >= len(want) || !strings.HasPrefix(got[i], want[i]) {
			t.Fatalf("lines %v, want 1 to 7 once each", got)
		}
	}
	if len(got) != 7 {
		t.Fatalf("%d lines, want 7", len(got))
	}
	// A finished deployment's stream sends what is left and ends at once.
	s = openStream(t, srv, fmt.Sprintf("%s?after=%s", path, lastID), "")
	if ev := s.next(t); ev.event != "end" {
		t.Errorf("event %+v, want end", ev)
	}
	if w := f.do(t, http.MethodGet, path+"?after=x", "viewer", nil); w.Code != 400 {
		t.Errorf("after=x: %d, want 400", w.Code)
	}
	if w := f.do(t, http.MethodGet, "/deployments/999999/logs/stream", "viewer", nil); w.Code != 404 {
		t.Errorf("missing deployment: %d, want 404", w.Code)
	}
}

// The login form draws in the dashboard's look, keeps a local next only, and escapes what it echoes.
func TestDashboardLogin(t *testing.T) {
	f := newDashFixture(t)
	for next, keep := range map[string]bool{"/deployments/3": true, "//evil.example/": false, "https://evil.example/": false} {
		w := httptest.NewRecorder()
		f.d.Login(w, httptest.NewRequest(http.MethodGet, "/login", nil), http.StatusUnauthorized,
			auth.LoginPage{Error: "wrong password", Next: next, Username: xssImg, OIDC: true, OIDCName: "Dex"})
		body := w.Body.String()
		if w.Code != 401 || !strings.Contains(body, "wrong password") || !strings.Contains(body, "Log in with Dex") ||
			strings.Contains(body, "<img") || strings.Contains(body, `<nav aria-label="Main">`) {
			t.Errorf("next %q: %d\n%s", next, w.Code, body)
		}
		if got := strings.Contains(body, `name="next" value="`+html.EscapeString(next)); got != keep {
			t.Errorf("next %q kept: %v, want %v", next, got, keep)
		}
	}
}
