package source

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testenv"
)

// serveRepo serves src over smart HTTPS with git http-backend, behind a
// handler that wants GitHub-style basic auth with token. git trusts the
// server's certificate through GIT_SSL_CAINFO, so its test may not be parallel.
func serveRepo(t *testing.T, src *testRepo, token string) (url string, authorized *atomic.Int32) {
	t.Helper()
	backend := &cgi.Handler{
		Path: testenv.RequireBinary(t, "git"),
		Args: []string{"http-backend"},
		Env: append(testenv.GitEnv(t.TempDir()),
			"GIT_PROJECT_ROOT="+filepath.Dir(src.Dir),
			"GIT_HTTP_EXPORT_ALL=1",
		),
	}
	authorized = new(atomic.Int32)
	want := "Basic " + basicAuth(token)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		authorized.Add(1)
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_SSL_CAINFO", ca)
	return srv.URL + "/" + filepath.Base(src.Dir), authorized
}

func TestFetchOverHTTPS(t *testing.T) {
	const token = "ghs_s3cr3tT0ken/with+odd=chars"
	src := testenv.NewGitRepo(t)
	src.Write("app/main.go", "package main")
	sha := src.Commit("first")
	url, authorized := serveRepo(t, src, token)

	var logs bytes.Buffer
	c, err := New(Config{Dir: t.TempDir(), WorkDir: t.TempDir()},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{token, basicAuth(token), "wrong-token", basicAuth("wrong-token")}
	assertNoSecret := func(t *testing.T, what, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contains secret %q:\n%s", what, s, text)
			}
		}
	}

	t.Run("right token", func(t *testing.T) {
		repo := Repo{FullName: "o/r", CloneURL: url, Token: token}
		if err := c.Fetch(t.Context(), repo); err != nil {
			t.Fatalf("Fetch: %v", err)
		}
		if authorized.Load() == 0 {
			t.Fatal("server saw no authorized request")
		}
		got, err := c.ReadFile(t.Context(), repo, sha, "app/main.go")
		if err != nil || string(got) != "package main" {
			t.Errorf("ReadFile = %q, %v", got, err)
		}
	})
	for _, tc := range []struct{ name, token string }{
		{"wrong token", "wrong-token"},
		{"no token", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := Repo{FullName: "o/other", CloneURL: url, Token: tc.token}
			err := c.Fetch(t.Context(), repo)
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			t.Logf("error: %v", err)
			assertNoSecret(t, "error", err.Error())
		})
	}
	assertNoSecret(t, "log output", logs.String())
	if !strings.Contains(logs.String(), "fetched repository") {
		t.Errorf("nothing logged; the check above proved nothing:\n%s", logs.String())
	}
}

// TestTokenStaysOffArgv checks the command line, which any local user can
// read in /proc, and that the host's git settings do not leak in.
func TestTokenStaysOffArgv(t *testing.T) {
	t.Setenv("GIT_DIR", "/somewhere/else")
	t.Setenv("GIT_TRACE_CURL", "1")
	const token = "ghs_argvtoken"
	c := newTestCache(t, Config{})
	cmd := c.command(t.Context(), gitRun{
		gitDir: c.dir,
		args:   []string{"fetch", "--", "https://example.com/o/r.git"},
		env:    authEnv(token),
	})
	argv := strings.Join(cmd.Args, " ")
	for _, s := range []string{token, basicAuth(token)} {
		if strings.Contains(argv, s) {
			t.Errorf("argv contains %q: %s", s, argv)
		}
	}
	env := strings.Join(cmd.Env, "\n")
	for _, want := range []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + basicAuth(token),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"HOME=" + c.home,
	} {
		if !strings.Contains(env, want) {
			t.Errorf("env lacks %q", want)
		}
	}
	for _, unwanted := range []string{"GIT_DIR=", "GIT_TRACE_CURL="} {
		if strings.Contains(env, unwanted) {
			t.Errorf("env passes host %s", unwanted)
		}
	}
}

// TestFetchTimeout hangs the server so that only Config.Timeout ends the fetch, and checks that
// the whole git process group went with it: git's HTTP helper, which holds the connection, must
// close it. (A helper that outlived the cancel would hold the connection, and the fetch's pipes
// until waitDelay, and the connection after that.) The timeout must fire while git waits on the
// server, not while it starts: when it ended git before the request came, the test tries again
// with a timeout twice as long, so a busy machine makes it slower, not wrong.
func TestFetchTimeout(t *testing.T) {
	t.Parallel()
	for timeout := 300 * time.Millisecond; ; timeout *= 2 {
		srv := newHangingServer(t)
		c := newTestCache(t, Config{Timeout: timeout})
		err := c.Fetch(t.Context(), Repo{FullName: "o/r", CloneURL: srv.url + "/repo", Token: "tok"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Fetch = %v, want DeadlineExceeded", err)
		}
		select {
		case <-srv.arrived:
		default:
			if timeout > time.Minute {
				t.Fatalf("git never reached the server before a %v timeout", timeout)
			}
			t.Logf("the %v timeout ended git before its request came; trying a longer one", timeout)
			continue
		}
		select {
		case <-srv.left:
		case <-time.After(time.Minute): // only stops a hung test
			t.Fatal("git's HTTP helper still holds its connection a minute after Fetch returned: the cancel missed it")
		}
		return
	}
}

// hangingServer answers no request: each waits until its client goes away or the test ends.
type hangingServer struct {
	url     string
	arrived chan struct{} // closed when the first request comes in
	left    chan struct{} // closed when the first request's client has gone away
}

func newHangingServer(t *testing.T) *hangingServer {
	t.Helper()
	h := &hangingServer{arrived: make(chan struct{}), left: make(chan struct{})}
	var first sync.Once
	testOver := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isFirst := false
		first.Do(func() { isFirst = true; close(h.arrived) })
		select {
		case <-r.Context().Done():
			if isFirst {
				close(h.left)
			}
		case <-testOver: // Close waits for handlers
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(testOver) })
	h.url = srv.URL
	return h
}

// Attack (issue 7, item 1): the token went over plain http to whatever server the clone URL
// named. Over http (allowed only when the configuration says so) the fetch works for a public
// repository, and the token never leaves the process.
func TestTokenNeverSentOverPlainHTTP(t *testing.T) {
	t.Parallel()
	const token = "ghs_CANARYplainhttp"
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "one")
	src.Commit("first")
	backend := &cgi.Handler{
		Path: testenv.RequireBinary(t, "git"),
		Args: []string{"http-backend"},
		Env:  append(testenv.GitEnv(t.TempDir()), "GIT_PROJECT_ROOT="+filepath.Dir(src.Dir), "GIT_HTTP_EXPORT_ALL=1"),
	}
	var leaked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || strings.Contains(r.URL.String(), token) {
			leaked.Add(1)
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c := newTestCache(t, Config{})
	if err := c.Fetch(t.Context(), Repo{FullName: "o/r", CloneURL: srv.URL + "/" + filepath.Base(src.Dir), Token: token}); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if n := leaked.Load(); n > 0 {
		t.Errorf("the token was sent over plain http in %d requests", n)
	}
}
