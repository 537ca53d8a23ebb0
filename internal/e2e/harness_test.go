// Package e2e drives the real slipway binary: a real git repository, signed webhooks over HTTP, a
// real PostgreSQL, and (for deployments) the real Docker engine, registry and Swarm.
package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

const (
	webhookSecret = "e2e-webhook-secret-value"
	apiToken      = "e2e-api-token-0123456789"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// TestMain removes what binary built (a 30-50 MB race-enabled binary), which no t.Cleanup can
// own: it is shared by every test of the process.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		if err := os.RemoveAll(binDir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: removing the test binary:", err)
		}
	}
	os.Exit(code)
}

// binary builds cmd/slipway once per test process.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slipway-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "slipway")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, "../../cmd/slipway").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// gitRepo is a local repository the test commits to (testenv.GitRepo, with the e2e tests' names).
type gitRepo struct {
	*testenv.GitRepo
	dir string
}

func newGitRepo(t testing.TB) *gitRepo {
	t.Helper()
	g := testenv.NewGitRepo(t)
	return &gitRepo{GitRepo: g, dir: g.Dir}
}

func (r *gitRepo) git(args ...string) string  { return r.Git(args...) }
func (r *gitRepo) write(path, content string) { r.Write(path, content) }

// commit commits everything and returns the new HEAD.
func (r *gitRepo) commit(msg string) string { return r.Commit(msg) }

// gatedGitServer serves repo over smart HTTP; while the gate is closed, requests wait, so a test
// can hold a planner mid-fetch.
type gatedGitServer struct {
	URL     string
	mu      sync.Mutex
	gate    chan struct{}
	arrived chan struct{}
}

func serveGit(t *testing.T, r *gitRepo) *gatedGitServer {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(r.dir), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_GLOBAL=/dev/null"}}
	s := &gatedGitServer{gate: make(chan struct{}), arrived: make(chan struct{}, 100)}
	close(s.gate)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case s.arrived <- struct{}{}:
		default:
		}
		s.mu.Lock()
		gate := s.gate
		s.mu.Unlock()
		select {
		case <-gate:
		case <-req.Context().Done():
			return
		}
		backend.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/" + filepath.Base(r.dir)
	return s
}

func (s *gatedGitServer) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
	for len(s.arrived) > 0 {
		<-s.arrived
	}
}

func (s *gatedGitServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.gate:
	default:
		close(s.gate)
	}
}

// server is one running `slipway serve` process.
type server struct {
	t    testing.TB
	cmd  *exec.Cmd
	URL  string
	logs *testenv.SyncBuffer
	done chan error
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs slipway serve against dbURL with env added, and waits until it is ready.
func startServer(t *testing.T, dbURL string, env ...string) *server {
	t.Helper()
	return launch(t, binary(t), dbURL, "/readyz", env...)
}

// startServerNotReady waits only for the process to answer /healthz.
func startServerNotReady(t *testing.T, dbURL string, env ...string) *server {
	t.Helper()
	return launch(t, binary(t), dbURL, "/healthz", env...)
}

// launch runs bin serve against dbURL, tuned for tests (debug logs, a short poll), env coming last
// so it can override any of that, and waits until probe answers 200.
func launch(t testing.TB, bin, dbURL, probe string, env ...string) *server {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(),
		"SLIPWAY_DATABASE_URL="+dbURL,
		"SLIPWAY_LISTEN_ADDR="+addr,
		"SLIPWAY_WEBHOOK_SECRET="+webhookSecret,
		"SLIPWAY_API_TOKENS="+apiToken,
		"SLIPWAY_METRICS_PUBLIC=true", // scraped like Prometheus on a trusted network
		"SLIPWAY_LOG_FORMAT=text",
		"SLIPWAY_LOG_LEVEL=debug",
		"SLIPWAY_GIT_CACHE_DIR="+filepath.Join(t.TempDir(), "git"),
		"SLIPWAY_GIT_WORK_DIR="+t.TempDir(),
		"SLIPWAY_QUEUE_POLL_INTERVAL=200ms",
		// The tests' repositories are local paths and http test servers; a repository without a
		// clone_url would be fetched from GitHub, which must fail fast here.
		"SLIPWAY_GIT_ALLOW_INSECURE_URLS=true",
		"SLIPWAY_GITHUB_URL=https://github.invalid",
	)
	cmd.Env = append(cmd.Env, env...)
	s := &server{t: t, cmd: cmd, URL: "http://" + addr, logs: &testenv.SyncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
		// Whatever the test did, the server never writes a secret it was given.
		for _, secret := range []string{webhookSecret, apiToken} {
			if strings.Contains(s.logs.String(), secret) {
				t.Errorf("slipway's output contains the secret %q", secret)
			}
		}
		if t.Failed() {
			t.Logf("slipway logs:\n%s", s.logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + probe)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("slipway exited before ready: %v\n%s", err, s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("slipway not ready in time:\n%s", s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the process to exit, returning its error.
func (s *server) stop(timeout time.Duration) error {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case err := <-s.done:
		return err
	case <-time.After(timeout):
		s.t.Fatalf("slipway did not exit within %s of SIGTERM:\n%s", timeout, s.logs.String())
		return nil
	}
}

// api calls the JSON API with token ("" for none) and decodes the answer into out.
func (s *server) api(method, path, token string, out any) int {
	s.t.Helper()
	req, _ := http.NewRequest(method, s.URL+"/api/v1"+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// pushPayload is a push event as GitHub sends it, reduced to what Slipway reads.
func pushPayload(repo, branch, before, after, message string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/" + branch, "before": before, "after": after,
		"repository":  map[string]any{"full_name": repo, "clone_url": "https://github.invalid/" + repo + ".git"},
		"pusher":      map[string]any{"name": "ada"},
		"head_commit": map[string]any{"id": after, "message": message},
	})
	return b
}

var deliverySeq sync.Mutex
var deliveryN int

// push sends a signed push webhook and returns the run id it queued (0 if none).
func (s *server) push(repo, branch, before, after, message string) int64 {
	s.t.Helper()
	body := pushPayload(repo, branch, before, after, message)
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write(body)
	deliverySeq.Lock()
	deliveryN++
	id := fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), deliveryN)
	deliverySeq.Unlock()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		RunID int64 `json:"run_id"`
	}
	_ = json.Unmarshal(raw, &out)
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		s.t.Fatalf("webhook answered %d: %s", resp.StatusCode, raw)
	}
	return out.RunID
}

// db is the test's own view of the database the server uses.
type db struct {
	t   testing.TB
	url string
	st  *store.Store
}

func newDB(t testing.TB) *db {
	t.Helper()
	url := testenv.DatabaseURL(t)
	st, err := store.Open(context.Background(), url, 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return &db{t: t, url: url, st: st}
}

func (d *db) run(id int64) deploy.Run {
	d.t.Helper()
	r, err := d.st.RunGet(context.Background(), id)
	if err != nil {
		d.t.Fatal(err)
	}
	r.Deployments, err = d.st.DeploymentsByRun(context.Background(), id)
	if err != nil {
		d.t.Fatal(err)
	}
	return r
}

// waitRun waits until the run and all its deployments reach a final status.
func (d *db) waitRun(id int64, timeout time.Duration) deploy.Run {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := d.run(id)
		done := r.Status.Final() || r.Status == deploy.StatusFailed
		for _, dep := range r.Deployments {
			done = done && dep.Status.Final()
		}
		if done {
			return r
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("run %d not finished after %s: %+v", id, timeout, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRunStatus waits until the run itself (not its deployments) is final.
func (d *db) waitRunStatus(id int64, timeout time.Duration) deploy.Run {
	d.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r := d.run(id)
		if r.Status.Final() || r.Status == deploy.StatusFailed {
			return r
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("run %d not finished after %s: %+v", id, timeout, r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// liveAt is when the docker target started a deployment's new container, from the line it logs
// once the container runs, before the stability window or the health check; zero when none.
func (d *db) liveAt(deploymentID int64) time.Time {
	d.t.Helper()
	lines, err := d.st.DeploymentLogs(context.Background(), deploymentID, 0, 100000)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, l := range lines {
		if strings.HasPrefix(l.Line, "waiting for ") && (strings.Contains(l.Line, " to stay up for ") || strings.Contains(l.Line, " to be healthy ")) {
			return l.CreatedAt
		}
	}
	return time.Time{}
}

func (d *db) logs(deploymentID int64) string {
	d.t.Helper()
	lines, err := d.st.DeploymentLogs(context.Background(), deploymentID, 0, 100000)
	if err != nil {
		d.t.Fatal(err)
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Line)
		b.WriteByte('\n')
	}
	return b.String()
}
