package source

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serveRepo serves src over smart HTTP with git http-backend, behind a
// handler that wants GitHub-style basic auth with token.
func serveRepo(t *testing.T, src *testRepo, token string) (url string, authorized *atomic.Int32) {
	t.Helper()
	backend := &cgi.Handler{
		Path: requireGit(t),
		Args: []string{"http-backend"},
		Env: append(testGitEnv(t.TempDir()),
			"GIT_PROJECT_ROOT="+filepath.Dir(src.dir),
			"GIT_HTTP_EXPORT_ALL=1",
		),
	}
	authorized = new(atomic.Int32)
	want := "Basic " + basicAuth(token)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		authorized.Add(1)
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/" + filepath.Base(src.dir), authorized
}

func TestFetchOverHTTP(t *testing.T) {
	t.Parallel()
	const token = "ghs_s3cr3tT0ken/with+odd=chars"
	src := newTestRepo(t)
	src.write("app/main.go", "package main")
	sha := src.commit("first")
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

// TestFetchTimeout hangs the server so only Config.Timeout ends the fetch;
// returning well within waitDelay shows the whole git process group went.
func TestFetchTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	c := newTestCache(t, Config{Timeout: 300 * time.Millisecond})
	start := time.Now()
	err := c.Fetch(t.Context(), Repo{FullName: "o/r", CloneURL: srv.URL + "/repo", Token: "tok"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch = %v, want DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > waitDelay/2 {
		t.Errorf("Fetch took %v after its deadline; git helpers outlived the cancel", elapsed)
	}
}
