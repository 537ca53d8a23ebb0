package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/internal/web"
)

const token = "api-token-not-for-logs"

type apiFixture struct {
	st     *store.Store
	router http.Handler
	logs   *bytes.Buffer // written by the router's logger; requests are served on the test goroutine
}

func newAPIFixture(t *testing.T) *apiFixture {
	t.Helper()
	st := testenv.Store(t)
	logs := &bytes.Buffer{}
	router := newTestRouter(t, st, web.Deps{
		API:     st,
		Actions: flow.NewActions(st, nil, remote, heads{"main": strings.Repeat("c", 40)}),
	}, logs)
	return &apiFixture{st: st, router: router, logs: logs}
}

// remote configures acme/app only.
func remote(repo string) (string, string, error) {
	if repo != "acme/app" {
		return "", "", errors.New("repository " + repo + " is not configured")
	}
	return "https://github.example/acme/app.git", "", nil
}

type heads map[string]string

func (h heads) BranchHead(_ context.Context, _ source.Repo, branch string) (string, error) {
	if sha, ok := h[branch]; ok {
		return sha, nil
	}
	return "", source.ErrNotFound
}

// call serves method target with a JSON body and decodes the JSON answer.
func (f *apiFixture) call(t *testing.T, method, target, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	f.router.ServeHTTP(w, req)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", method, target, w.Body.String())
	}
	return w.Code, out
}

type ready struct{}

func (ready) Ready(context.Context) error { return nil }

// get serves target (its query already escaped) and decodes the JSON answer.
func (f *apiFixture) get(t *testing.T, target string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	w := httptest.NewRecorder()
	f.router.ServeHTTP(w, req)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s: answer is not JSON: %q", target, w.Body.String())
	}
	return w.Code, body
}

// seed records one run of acme/app with a queued prod deployment per service, returning their ids.
func seed(t *testing.T, st *store.Store, services ...string) []int64 {
	t.Helper()
	ctx := context.Background()
	const sha = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
	runID, err := st.RunCreate(ctx, deploy.Run{Trigger: "push", Repo: "acme/app", Ref: "refs/heads/main", Branch: "main", AfterSHA: sha})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, s := range services {
		var id int64
		err := st.Pool().QueryRow(ctx, `INSERT INTO deployments (run_id, repo, service, environment, commit_sha)
			VALUES ($1, 'acme/app', $2, 'prod', $3) RETURNING id`, runID, s, sha).Scan(&id)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// Filters PostgreSQL cannot compare (NUL, invalid UTF-8) and unknown statuses answered 500; they
// are the client's mistake, so 400 naming the parameter.
func TestDeploymentFilters(t *testing.T) {
	f := newAPIFixture(t)
	seed(t, f.st, "api", "web")
	cases := []struct {
		query  string
		code   int
		errHas []string
		count  int
	}{
		{query: "repo=acme%2Fapp&service=api", code: 200, count: 1},
		{query: "status=queued", code: 200, count: 2},
		{query: "status=rolled_back", code: 200, count: 0},
		{query: "repo=acme%00", code: 400, errHas: []string{"repo"}},
		{query: "service=%ff", code: 400, errHas: []string{"service"}},
		{query: "environment=pr%00od", code: 400, errHas: []string{"environment"}},
		{query: "status=%00", code: 400, errHas: []string{"status"}},
		{query: "status=%ffqueued", code: 400, errHas: []string{"status"}},
		{query: "status=bogus", code: 400, errHas: []string{"status", "queued", "building", "pushing", "deploying",
			"succeeded", "failed", "cancelled", "superseded", "rolled_back"}},
		{query: "status=planning", code: 400, errHas: []string{"status"}}, // a run status, not a deployment's
		{query: "limit=abc", code: 400, errHas: []string{"limit"}},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			code, body := f.get(t, "/api/v1/deployments?"+c.query)
			if code != c.code {
				t.Fatalf("status %d %v, want %d", code, body, c.code)
			}
			if c.code != 200 {
				msg := errorOf(t, body, "invalid")
				for _, s := range c.errHas {
					if !strings.Contains(msg, s) {
						t.Errorf("error %q does not name %q", msg, s)
					}
				}
				return
			}
			if ds, _ := body["deployments"].([]any); len(ds) != c.count {
				t.Errorf("%d deployments, want %d", len(ds), c.count)
			}
		})
	}
	for _, q := range []string{"repo=acme%00", "repo=%ff"} {
		if code, body := f.get(t, "/api/v1/live?"+q); code != 400 {
			t.Errorf("live?%s: status %d %v, want 400", q, code, body)
		}
	}
}

// Cursors above 2^31-1 (deployment ids are bigserial) answered 500: the parameter was typed int4.
func TestDeploymentsBeforeBigCursor(t *testing.T) {
	f := newAPIFixture(t)
	if _, err := f.st.Pool().Exec(context.Background(), "SELECT setval('deployments_id_seq', 3000000000)"); err != nil {
		t.Fatal(err)
	}
	ids := seed(t, f.st, "api", "web", "worker")
	if ids[0] <= 1<<31-1 {
		t.Fatalf("ids %v are not past int4", ids)
	}
	code, body := f.get(t, "/api/v1/deployments?limit=2")
	if code != 200 {
		t.Fatalf("first page: %d %v", code, body)
	}
	cursor := int64(body["next_cursor"].(float64))
	if cursor != ids[1] {
		t.Fatalf("next_cursor %d, want %d", cursor, ids[1])
	}
	code, body = f.get(t, "/api/v1/deployments?limit=2&before="+strconv.FormatInt(cursor, 10))
	if code != 200 {
		t.Fatalf("second page: %d %v", code, body)
	}
	if ds, _ := body["deployments"].([]any); len(ds) != 1 || int64(ds[0].(map[string]any)["id"].(float64)) != ids[0] {
		t.Errorf("second page %v, want deployment %d", body, ids[0])
	}
	for _, before := range []string{"2147483648", "9223372036854775807"} {
		if code, body := f.get(t, "/api/v1/deployments?before="+before); code != 200 {
			t.Errorf("before=%s: %d %v", before, code, body)
		}
	}
	if code, _ := f.get(t, "/api/v1/deployments?before=9223372036854775808"); code != 400 {
		t.Errorf("before past int64: %d, want 400", code)
	}
}

// A 500 hides its cause from the client; the log must have it, with the request, but no secret.
func TestInternalErrorLogged(t *testing.T) {
	f := newAPIFixture(t)
	f.st.Close() // every query now fails with an error no client caused
	code, body := f.get(t, "/api/v1/deployments?service=api")
	if code != 500 || errorOf(t, body, "internal") != "internal error" {
		t.Fatalf("got %d %v, want 500 internal error", code, body)
	}
	var rec map[string]any
	if err := json.Unmarshal(f.logs.Bytes(), &rec); err != nil {
		t.Fatalf("want one JSON log record, got %q", f.logs.String())
	}
	cause, _ := rec["err"].(string)
	if rec["level"] != "ERROR" || rec["method"] != "GET" || rec["path"] != "/api/v1/deployments" || !strings.Contains(cause, "closed pool") {
		t.Errorf("log record %v lacks level, method, path or cause", rec)
	}
	if strings.Contains(f.logs.String(), token) {
		t.Errorf("log holds the API token: %s", f.logs.String())
	}
}

// errorOf returns the message of an error answer {"error": {"code", "message"}}, checking its code.
func errorOf(t *testing.T, body map[string]any, code string) string {
	t.Helper()
	e, _ := body["error"].(map[string]any)
	if e["code"] != code {
		t.Errorf("error %v: code %v, want %s", body, e["code"], code)
	}
	msg, _ := e["message"].(string)
	return msg
}

// The actions answer 202 with what they queued, record who asked, and refuse bad input with 400
// and a JSON error naming the problem.
func TestAPIActions(t *testing.T) {
	f := newAPIFixture(t)
	ids := seed(t, f.st, "api", "web")
	digest := "sha256:" + strings.Repeat("ab", 32)
	if _, err := f.st.Pool().Exec(context.Background(),
		`UPDATE deployments SET status = 'succeeded', image_ref = 'reg/api', image_digest = $2, finished_at = now() WHERE id = $1`, ids[0], digest); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(ids[0], 10)
	for _, tc := range []struct {
		method, path, body string
		code               int
		errCode            string
	}{
		{"POST", "/api/v1/deployments/" + id + "/rollback", "", 202, ""},
		{"POST", "/api/v1/deployments/" + id + "/redeploy", "", 202, ""},
		{"POST", "/api/v1/deployments/" + strconv.FormatInt(ids[1], 10) + "/redeploy", "", 409, "conflict"},
		{"POST", "/api/v1/deploy", `{"repo": "acme/app", "branch": "main"}`, 202, ""},
		{"POST", "/api/v1/deploy", `{"repo": "acme/app", "branch": "main", "sha": "` + strings.Repeat("d", 40) + `"}`, 202, ""},
		{"POST", "/api/v1/deploy", `{"repo": "acme/app", "branch": "gone"}`, 404, "not_found"},
		{"POST", "/api/v1/deploy", `{"repo": "other/app", "branch": "main"}`, 400, "invalid"},
		{"POST", "/api/v1/deploy", `{"repo": "acme/app", "branch": "main", "sha": "HEAD"}`, 400, "invalid"},
		{"POST", "/api/v1/deploy", `{"repo": "acme/app", "bogus": 1}`, 400, "invalid"},
		{"POST", "/api/v1/deploy", `not json`, 400, "invalid"},
		{"POST", "/api/v1/deployments/" + strconv.FormatInt(ids[1], 10) + "/cancel", `{"reason": "wrong commit"}`, 202, ""},
		{"POST", "/api/v1/deployments/" + strconv.FormatInt(ids[1], 10) + "/cancel", ``, 409, "conflict"},
		{"GET", "/api/v1/deployments/" + id + "/logs?after=x", "", 400, "invalid"},
	} {
		t.Run(tc.method+" "+tc.path+" "+tc.body, func(t *testing.T) {
			code, body := f.call(t, tc.method, tc.path, tc.body)
			if code != tc.code {
				t.Fatalf("status %d %v, want %d", code, body, tc.code)
			}
			if tc.errCode != "" {
				if msg := errorOf(t, body, tc.errCode); msg == "" {
					t.Errorf("no message in %v", body)
				}
				return
			}
			if runID, ok := body["run_id"].(float64); ok {
				run, err := f.st.RunGet(context.Background(), int64(runID))
				if err != nil || run.Pusher != auth.ConfigTokenPrincipal {
					t.Errorf("run %+v (%v): want it recorded as asked for by the config token", run, err)
				}
			}
		})
	}
	d, err := f.st.DeploymentGet(context.Background(), ids[1])
	if err != nil || d.Status != deploy.StatusCancelled || d.CancelReason != "wrong commit" || d.CancelledBy != auth.ConfigTokenPrincipal {
		t.Errorf("cancelled deployment %+v (%v)", d, err)
	}
}
