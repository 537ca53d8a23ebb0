package webhook_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/metrics"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/internal/webhook"
)

const secret = "it's-a-secret-to-everybody"

func sign(body []byte, key string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

type fixture struct {
	st      *store.Store
	metrics *metrics.Metrics
	srv     *httptest.Server
}

func newFixture(t *testing.T, maxBody int64) *fixture {
	t.Helper()
	return newFixtureOn(t, testenv.Store(t), webhook.Config{MaxBody: maxBody})
}

// newFixtureOn serves a handler configured by cfg (secrets and repositories added) on st.
func newFixtureOn(t *testing.T, st *store.Store, cfg webhook.Config) *fixture {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	if cfg.Secrets == nil && cfg.Keys == nil {
		cfg.Secrets = [][]byte{[]byte("an-old-secret-being-rotated"), []byte(secret)}
	}
	if cfg.Repos == nil {
		cfg.Repos = config.Repos{
			{Name: "Codertocat/Hello-World", Branches: []string{"master", "release/*"}},
			{Name: "Octocoders/Hello-World"},
		}
	}
	h, err := webhook.NewHandler(cfg, st, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{st: st, metrics: m, srv: srv}
}

type reply struct {
	code int
	body webhook.Response
	hdr  http.Header
}

func (f *fixture) post(t *testing.T, event, delivery, contentType string, body []byte, sig string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if event != "" {
		req.Header.Set("X-GitHub-Event", event)
	}
	if delivery != "" {
		req.Header.Set("X-GitHub-Delivery", delivery)
	}
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r webhook.Response
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("response is not JSON: %q", raw)
	}
	return reply{code: resp.StatusCode, body: r, hdr: resp.Header}
}

func (f *fixture) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := f.st.Pool().QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "github-webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every real payload, signed, through the real handler and database.
func TestFixtures(t *testing.T) {
	f := newFixture(t, 0)
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "github-webhooks", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	want := map[string]struct {
		code    int
		outcome string
		reason  string
	}{
		"create.payload.json":                   {200, "ignored", "event not handled"},
		"create.with-description.payload.json":  {200, "ignored", "event not handled"},
		"create.with-installation.payload.json": {200, "ignored", "event not handled"},
		"create.with-organization.payload.json": {200, "ignored", "event not handled"},
		"delete.payload.json":                   {200, "ignored", "event not handled"},
		"delete.with-installation.payload.json": {200, "ignored", "event not handled"},
		"delete.with-organization.payload.json": {200, "ignored", "event not handled"},
		"ping.payload.json":                     {200, "ping", "pong"},
		"ping.with-app_id.payload.json":         {200, "ping", "pong"},
		"ping.with-organization.payload.json":   {200, "ping", "pong"},
		"push.1.payload.json":                   {200, "ignored", "branch or tag deleted"},
		"push.payload.json":                     {200, "ignored", "branch or tag deleted"},
		"push.with-installation.payload.json":   {200, "ignored", "branch or tag deleted"},
		"push.with-organization.payload.json":   {200, "ignored", "branch or tag deleted"},
		"push.with-new-branch.payload.json":     {202, "queued", ""},
		// The same push as push.with-new-branch (repository, branch, pushed_at, commit): a replay.
		"push.with-no-username-committer.payload.json": {200, "stale", "push of 6113728f27ae82c7b1a177c8d03f9e96e0adf246 to master is not newer than one already received for the branch (pushed_at 1557933657): not deployed"},
	}
	queued := 0
	for i, path := range files {
		name := filepath.Base(path)
		w, ok := want[name]
		if !ok {
			t.Errorf("fixture %s has no expectation", name)
			continue
		}
		body := readFixture(t, name)
		event, _, _ := strings.Cut(name, ".")
		delivery := fmt.Sprintf("fixture-%d", i)
		r := f.post(t, event, delivery, "application/json", body, sign(body, secret))
		if r.code != w.code || r.body.Outcome != w.outcome || r.body.Reason != w.reason {
			t.Errorf("%s: got %d %q %q, want %d %q %q", name, r.code, r.body.Outcome, r.body.Reason, w.code, w.outcome, w.reason)
		}
		d, err := f.st.WebhookDeliveryGet(context.Background(), delivery)
		if err != nil {
			t.Errorf("%s: delivery not recorded: %v", name, err)
			continue
		}
		if d.Event != event || d.Outcome != w.outcome || d.StatusCode != w.code {
			t.Errorf("%s: recorded %+v", name, d)
		}
		if w.code == 202 {
			queued++
			if r.body.RunID == 0 || d.RunID != r.body.RunID {
				t.Errorf("%s: run id %d in answer, %d recorded", name, r.body.RunID, d.RunID)
			}
			var repo, branch, after, status string
			err := f.st.Pool().QueryRow(context.Background(),
				"SELECT repo, branch, after_sha, status FROM runs WHERE id = $1", r.body.RunID).Scan(&repo, &branch, &after, &status)
			if err != nil {
				t.Fatal(err)
			}
			if repo != "codertocat/hello-world" || branch != "master" || after != "6113728f27ae82c7b1a177c8d03f9e96e0adf246" || status != "queued" {
				t.Errorf("%s: run row %s %s %s %s", name, repo, branch, after, status)
			}
		}
	}
	if n := f.count(t, "runs"); n != queued {
		t.Errorf("runs = %d, want %d", n, queued)
	}
	if n := f.count(t, "webhook_deliveries"); n != len(files) {
		t.Errorf("deliveries = %d, want %d", n, len(files))
	}
	if got := testutil.ToFloat64(f.metrics.WebhookDeliveries.WithLabelValues("push", "queued")); got != 1 {
		t.Errorf("metric push/queued = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.metrics.WebhookDeliveries.WithLabelValues("push", "stale")); got != 1 {
		t.Errorf("metric push/stale = %v, want 1", got)
	}
}

func pushBody(t *testing.T, repo, ref string) []byte {
	t.Helper()
	return pushWith(t, func(m map[string]any) {
		m["ref"] = ref
		field(m, "repository")["full_name"] = repo
	})
}

func TestPushOutcomes(t *testing.T) {
	f := newFixture(t, 0)
	cases := []struct {
		name, repo, ref string
		code            int
		outcome, reason string
	}{
		{"deploy branch", "Codertocat/Hello-World", "refs/heads/master", 202, "queued", ""},
		{"branch pattern", "codertocat/hello-world", "refs/heads/release/1.2", 202, "queued", ""},
		{"any branch when none listed", "Octocoders/Hello-World", "refs/heads/feature/x", 202, "queued", ""},
		{"unmatched branch", "Codertocat/Hello-World", "refs/heads/feature/x", 200, "ignored", "branch feature/x is not a deploy branch of Codertocat/Hello-World"},
		{"unknown repository named in capitals", "SOMEONE/Else", "refs/heads/master", 200, "ignored", "repository someone/else is not configured"},
		{"unknown repository", "someone/else", "refs/heads/master", 200, "ignored", "repository someone/else is not configured"},
		{"tag push", "Codertocat/Hello-World", "refs/tags/v1", 200, "ignored", "tag push"},
		{"branch with shell characters", "Codertocat/Hello-World", "refs/heads/$(rm -rf /);`id`", 200, "ignored", "branch $(rm -rf /);`id` is not a deploy branch of Codertocat/Hello-World"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := pushBody(t, c.repo, c.ref)
			r := f.post(t, "push", fmt.Sprintf("outcome-%d", i), "application/json", body, sign(body, secret))
			if r.code != c.code || r.body.Outcome != c.outcome || r.body.Reason != c.reason {
				t.Errorf("got %d %q %q, want %d %q %q", r.code, r.body.Outcome, r.body.Reason, c.code, c.outcome, c.reason)
			}
		})
	}
}

func TestRejections(t *testing.T) {
	f := newFixture(t, 64<<10)
	body := readFixture(t, "push.with-new-branch.payload.json")
	huge := bytes.Repeat([]byte(" "), 65<<10)
	hugeSigned := append(append([]byte{}, body[:len(body)-1]...), append(huge, '}')...)
	cases := []struct {
		name        string
		event       string
		delivery    string
		contentType string
		body        []byte
		sig         string
		code        int
	}{
		{"missing signature", "push", "r1", "application/json", body, "", 401},
		{"wrong secret", "push", "r2", "application/json", body, sign(body, "not-the-secret"), 401},
		{"tampered body", "push", "r3", "application/json", append([]byte(" "), body...), sign(body, secret), 401},
		{"malformed signature", "push", "r4", "application/json", body, "sha256=zz", 401},
		{"sha1 signature only", "push", "r5", "application/json", body, "sha1=" + strings.Repeat("0", 40), 401},
		{"malformed JSON", "push", "r6", "application/json", []byte(`{"ref":`), sign([]byte(`{"ref":`), secret), 400},
		{"not a push", "push", "r7", "application/json", []byte(`{"zen":"hi"}`), sign([]byte(`{"zen":"hi"}`), secret), 400},
		{"bad after sha", "push", "r8", "application/json", []byte(`{"ref":"refs/heads/master","after":"; rm -rf /","repository":{"full_name":"Codertocat/Hello-World"}}`),
			sign([]byte(`{"ref":"refs/heads/master","after":"; rm -rf /","repository":{"full_name":"Codertocat/Hello-World"}}`), secret), 400},
		{"missing delivery id", "push", "", "application/json", body, sign(body, secret), 400},
		{"missing event", "", "r9", "application/json", body, sign(body, secret), 400},
		{"unsupported content type", "push", "r10", "text/plain", body, sign(body, secret), 400},
		{"oversize", "push", "r11", "application/json", hugeSigned, sign(hugeSigned, secret), 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.post(t, c.event, c.delivery, c.contentType, c.body, c.sig)
			if r.code != c.code {
				t.Errorf("status %d (%q), want %d", r.code, r.body.Error, c.code)
			}
			if r.body.Error == "" {
				t.Errorf("no error message in the answer")
			}
		})
	}
	if n := f.count(t, "webhook_deliveries"); n != 0 {
		t.Errorf("rejected deliveries left %d rows", n)
	}
	if n := f.count(t, "runs"); n != 0 {
		t.Errorf("rejected deliveries left %d runs", n)
	}
}

func TestFormEncodedPush(t *testing.T) {
	f := newFixture(t, 0)
	json := readFixture(t, "push.with-new-branch.payload.json")
	body := []byte(url.Values{"payload": {string(json)}}.Encode())
	r := f.post(t, "push", "form-1", "application/x-www-form-urlencoded", body, sign(body, secret))
	if r.code != 202 || r.body.RunID == 0 {
		t.Fatalf("got %d %+v", r.code, r.body)
	}
}

// A signed form body that does not decode (a bad escape) is the sender's mistake, not a forgery:
// 400 with the reason, and nothing recorded. The same body unsigned is still 401.
func TestFormEncodedBadEscape(t *testing.T) {
	f := newFixture(t, 0)
	body := []byte("payload=%zz")
	if r := f.post(t, "push", "form-bad", "application/x-www-form-urlencoded", body, sign(body, secret)); r.code != 400 || !strings.Contains(r.body.Error, "form body") {
		t.Errorf("signed bad form: %d %+v, want 400 naming the form body", r.code, r.body)
	}
	if r := f.post(t, "push", "form-bad-2", "application/x-www-form-urlencoded", body, sign(body, "wrong")); r.code != 401 {
		t.Errorf("unsigned bad form: %d, want 401", r.code)
	}
	if n := f.count(t, "webhook_deliveries"); n != 0 {
		t.Errorf("%d deliveries recorded", n)
	}
}

// A redelivery (the same X-GitHub-Delivery), even many at once, gets the same answer and one run.
func TestRedelivery(t *testing.T) {
	f := newFixture(t, 0)
	body := readFixture(t, "push.with-new-branch.payload.json")
	first := f.post(t, "push", "dup-1", "application/json", body, sign(body, secret))
	if first.code != 202 {
		t.Fatalf("first delivery: %d", first.code)
	}
	var wg sync.WaitGroup
	replies := make([]reply, 8)
	for i := range replies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[i] = f.post(t, "push", "dup-1", "application/json", body, sign(body, secret))
		}()
	}
	wg.Wait()
	for _, r := range replies {
		if r.code != first.code || r.body != first.body {
			t.Errorf("redelivery answered %d %+v, first was %d %+v", r.code, r.body, first.code, first.body)
		}
		if r.hdr.Get("X-Slipway-Redelivery") != "true" {
			t.Errorf("redelivery not marked")
		}
	}
	if n := f.count(t, "runs"); n != 1 {
		t.Errorf("runs = %d, want 1", n)
	}
	// Concurrent first deliveries of one id: still exactly one run.
	body2 := pushBody(t, "Codertocat/Hello-World", "refs/heads/release/9")
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); f.post(t, "push", "dup-2", "application/json", body2, sign(body2, secret)) }()
	}
	wg.Wait()
	if n := f.count(t, "runs"); n != 2 {
		t.Errorf("runs = %d, want 2", n)
	}
}

// Placeholders pushWith turns into what json.Marshal cannot write: a byte that is not UTF-8, and
// an escaped lone surrogate (which a JSON decoder cannot turn into UTF-8 either).
const (
	badByte   = "@@bad-byte@@"
	surrogate = "@@surrogate@@"
)

// pushedAt makes each push pushWith builds newer than the one before, as GitHub's are: the
// same push twice would be a replay, which is recorded stale and deploys nothing.
var pushedAt atomic.Int64

// pushWith returns the queued push fixture, made the newest push yet, changed by edit.
func pushWith(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(t, "push.with-new-branch.payload.json"), &m); err != nil {
		t.Fatal(err)
	}
	pushedAt.CompareAndSwap(0, 1557933657)
	field(m, "repository")["pushed_at"] = pushedAt.Add(1)
	edit(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(badByte), []byte{0xff})
	return bytes.ReplaceAll(b, []byte(surrogate), []byte(`\ud800`))
}

func field(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

// Text PostgreSQL refuses (NUL, invalid UTF-8) answered 503 once; it is now refused with a 400
// naming the field when it identifies something, and stored with U+FFFD in its place when it is
// free text.
func TestUnstorableInput(t *testing.T) {
	f := newFixture(t, 0)
	cases := []struct {
		name     string
		event    string
		delivery string
		body     []byte
		code     int
		errHas   string // for a 400, the field the message must name
		pusher   string // for a 202, what the run records
		message  string
	}{
		{name: "NUL in pusher name", body: pushWith(t, func(m map[string]any) { field(m, "pusher")["name"] = "Code\x00rtocat" }),
			code: 202, pusher: "Code\uFFFDrtocat", message: "Initial commit"},
		{name: "invalid UTF-8 in pusher name", body: pushWith(t, func(m map[string]any) { field(m, "pusher")["name"] = "Code" + badByte }),
			code: 202, pusher: "Code\uFFFD", message: "Initial commit"},
		{name: "NUL in sender login used as pusher", body: pushWith(t, func(m map[string]any) {
			field(m, "pusher")["name"] = ""
			field(m, "sender")["login"] = "\x00octo"
		}), code: 202, pusher: "\uFFFDocto", message: "Initial commit"},
		{name: "NUL in commit message", body: pushWith(t, func(m map[string]any) { field(m, "head_commit")["message"] = "fix\x00it\x00" }),
			code: 202, pusher: "Codertocat", message: "fix\uFFFDit\uFFFD"},
		{name: "invalid UTF-8 in commit message", body: pushWith(t, func(m map[string]any) { field(m, "head_commit")["message"] = badByte + "fix" }),
			code: 202, pusher: "Codertocat", message: "\uFFFDfix"},
		{name: "lone surrogate in commit message", body: pushWith(t, func(m map[string]any) { field(m, "head_commit")["message"] = "fix" + surrogate }),
			code: 202, pusher: "Codertocat", message: "fix\uFFFD"},
		{name: "NUL in ref", body: pushWith(t, func(m map[string]any) { m["ref"] = "refs/heads/mas\x00ter" }),
			code: 400, errHas: "ref"},
		{name: "invalid UTF-8 in ref", body: pushWith(t, func(m map[string]any) { m["ref"] = "refs/heads/" + badByte }),
			code: 400, errHas: "ref"},
		{name: "control character in ref", body: pushWith(t, func(m map[string]any) { m["ref"] = "refs/heads/a\x01b" }),
			code: 400, errHas: "ref"},
		{name: "NUL in repository name", body: pushWith(t, func(m map[string]any) { field(m, "repository")["full_name"] = "Codertocat/Hello-World\x00" }),
			code: 400, errHas: "repository.full_name"},
		{name: "invalid UTF-8 in repository name", body: pushWith(t, func(m map[string]any) { field(m, "repository")["full_name"] = "Codertocat/" + badByte }),
			code: 400, errHas: "repository.full_name"},
		{name: "NUL in clone URL, which is not read", body: pushWith(t, func(m map[string]any) { field(m, "repository")["clone_url"] = "https://github.com/\x00.git" }),
			code: 202, pusher: "Codertocat", message: "Initial commit"},
		{name: "NUL in ping repository", event: "ping", body: []byte(`{"zen":"hi","repository":{"full_name":"a/b\u0000"}}`),
			code: 400, errHas: "repository.full_name"},
		{name: "invalid UTF-8 in delivery id", delivery: "d-\xff", body: pushWith(t, func(map[string]any) {}),
			code: 400, errHas: "X-GitHub-Delivery"},
		{name: "invalid UTF-8 in event", event: "push\xff", body: pushWith(t, func(map[string]any) {}),
			code: 400, errHas: "X-GitHub-Event"},
	}
	accepted := 0
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			event, delivery := cmp.Or(c.event, "push"), cmp.Or(c.delivery, fmt.Sprintf("unstorable-%d", i))
			r := f.post(t, event, delivery, "application/json", c.body, sign(c.body, secret))
			if r.code != c.code {
				t.Fatalf("status %d (%+v), want %d", r.code, r.body, c.code)
			}
			if c.code == 400 {
				if !strings.Contains(r.body.Error, c.errHas) {
					t.Errorf("error %q does not name %s", r.body.Error, c.errHas)
				}
				return
			}
			accepted++
			var pusher, message string
			err := f.st.Pool().QueryRow(context.Background(), "SELECT pusher, message FROM runs WHERE id = $1", r.body.RunID).
				Scan(&pusher, &message)
			if err != nil {
				t.Fatal(err)
			}
			if pusher != c.pusher || message != c.message {
				t.Errorf("run recorded pusher %q message %q, want %q %q", pusher, message, c.pusher, c.message)
			}
		})
	}
	if n := f.count(t, "webhook_deliveries"); n != accepted {
		t.Errorf("deliveries = %d, want %d (refused ones must leave none)", n, accepted)
	}
}

// GitHub must be told the truth when the database fails: a delivery whose statement reached
// PostgreSQL may commit even though its answer never comes back.
func TestIngestOutcomeUnknown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := testenv.Store(t)
	f := newFixtureOn(t, st, webhook.Config{Timeout: 250 * time.Millisecond})
	// The ingest statement blocks on lock 6, which this test holds, until the handler's deadline
	// passes and pgx sends a cancel request. The trigger swallows it, as a server stuck past the
	// point of no return would (a commit waiting on its WAL flush cannot be cancelled), and
	// commits. Lock 8 is released once the cancel has been swallowed, lock 9 once the transaction
	// has ended: the test waits on them, not on the clock.
	// The sequence, which no rollback undoes, tells whether the statement reached the trigger at
	// all: on a busy machine the deadline may pass before it does, and the test tries again.
	_, err := st.Pool().Exec(ctx, `
		CREATE SEQUENCE hold_entered;
		CREATE FUNCTION hold_ingest() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			PERFORM nextval('hold_entered');
			PERFORM pg_advisory_xact_lock(9);
			PERFORM pg_advisory_lock(8);
			BEGIN
				PERFORM pg_advisory_xact_lock_shared(6);
			EXCEPTION WHEN query_canceled THEN
			END;
			PERFORM pg_advisory_unlock(8);
			RETURN NEW;
		END $$;
		CREATE TRIGGER hold_ingest AFTER INSERT ON webhook_deliveries FOR EACH ROW EXECUTE FUNCTION hold_ingest()`)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := st.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_lock(6)"); err != nil {
		t.Fatal(err)
	}

	body := readFixture(t, "push.with-new-branch.payload.json")
	delivery := ""
	for attempt := 1; delivery == ""; attempt++ {
		if attempt > 20 {
			t.Fatal("the ingest statement never reached PostgreSQL within the handler's deadline")
		}
		id := fmt.Sprintf("frozen-%d", attempt)
		r := f.post(t, "push", id, "application/json", body, sign(body, secret))
		if r.code != http.StatusServiceUnavailable {
			t.Fatalf("status %d %+v, want 503", r.code, r.body)
		}
		if !strings.Contains(r.body.Error, "may have been recorded") || !strings.Contains(r.body.Error, "redelivering it is safe") {
			t.Errorf("answer %q claims to know the outcome", r.body.Error)
		}
		var entered int64
		if err := st.Pool().QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM hold_entered`).Scan(&entered); err != nil {
			t.Fatal(err)
		}
		if entered > 0 {
			delivery = id
		}
	}
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_lock(8)"); err != nil {
		t.Fatalf("waiting for the cancel to reach the statement: %v", err)
	}
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_lock(9)"); err != nil {
		t.Fatalf("waiting for the statement's transaction to end: %v", err)
	}
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_unlock_all()"); err != nil {
		t.Fatal(err)
	}
	stored, err := st.WebhookDeliveryGet(ctx, delivery)
	if err != nil || stored.RunID == 0 {
		t.Fatalf("the delivery answered 503 was committed: %+v, %v", stored, err)
	}
	// The redelivery the answer invites gets the stored answer and queues nothing more.
	again := f.post(t, "push", delivery, "application/json", body, sign(body, secret))
	if again.code != http.StatusAccepted || again.body.RunID != stored.RunID || again.hdr.Get("X-Slipway-Redelivery") != "true" {
		t.Errorf("redelivery answered %d %+v, want 202 with run %d", again.code, again.body, stored.RunID)
	}
	if n := f.count(t, "runs"); n != 1 {
		t.Errorf("runs = %d, want 1", n)
	}
}

// When no connection could be had, nothing reached PostgreSQL, and the answer may say so.
func TestIngestNotRecorded(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, testenv.DatabaseURL(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	f := newFixtureOn(t, st, webhook.Config{Timeout: 250 * time.Millisecond})
	held, err := st.Pool().Acquire(ctx) // the pool's only connection
	if err != nil {
		t.Fatal(err)
	}
	body := readFixture(t, "push.with-new-branch.payload.json")
	r := f.post(t, "push", "starved-1", "application/json", body, sign(body, secret))
	held.Release()
	if r.code != http.StatusServiceUnavailable || !strings.Contains(r.body.Error, "not recorded") {
		t.Errorf("got %d %q, want 503 saying the delivery was not recorded", r.code, r.body.Error)
	}
	if n := f.count(t, "webhook_deliveries"); n != 0 {
		t.Errorf("deliveries = %d, want 0", n)
	}
}
