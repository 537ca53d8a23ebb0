package imagebuild

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
)

// builderModes are the ways builds run here: BuildKit (which on an engine without a bridge
// network needs --network host) and the classic builder, both with the test CLI; and whatever
// "auto" picks for the docker first on PATH, which may be another CLI (a newer one without
// buildx, on these machines).
var builderModes = []struct {
	name    string
	cfg     Config
	pathCLI bool
}{
	{"buildkit", Config{BuildKit: BuildKitOn, Network: "host"}, false},
	{"classic", Config{BuildKit: BuildKitOff}, false},
	{"auto-path-docker", Config{BuildKit: BuildKitAuto, Network: "host"}, true},
}

// forEachMode runs f, in parallel, once per builder mode.
func forEachMode(t *testing.T, f func(t *testing.T, e dockertest.Env, b *Builder)) {
	e := dockertest.Require(t)
	for _, m := range builderModes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			cfg := m.cfg
			binary := e.CLI
			if m.pathCLI {
				binary = "docker"
			}
			cfg.Engine, cfg.Timeout = dockertest.Engine(t, binary, e.Host), 5*time.Minute
			b, err := New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
			if err != nil {
				t.Fatal(err)
			}
			f(t, e, b)
		})
	}
}

func nonce(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// project writes a Dockerfile into a fresh checkout and returns a request for it, tagged with a
// tag removed at the end. The nonce comment keeps the build cache from answering for an earlier
// run of the same test.
func project(t *testing.T, dockerfile string) deploy.BuildRequest {
	t.Helper()
	dir := t.TempDir()
	n := nonce(t)
	mustWrite(t, filepath.Join(dir, "Dockerfile"), dockerfile, 0o644)
	mustWrite(t, filepath.Join(dir, "nonce"), n, 0o644)
	tag := "slipway-test/build:" + n
	e := dockertest.Require(t)
	// --no-prune: parallel tests share cached intermediate images; pruning them under a running
	// classic build fails it ("unknown parent image ID").
	t.Cleanup(func() { e.TryDocker("rmi", "-f", "--no-prune", tag) })
	return deploy.BuildRequest{Dir: dir, Tags: []string{tag}}
}

// recorder is a LogFunc that keeps the lines and lets a test wait for one.
type recorder struct {
	mu       sync.Mutex
	lines    []string
	watchers []watcher
}

type watcher struct {
	match func(string) bool
	ch    chan struct{}
}

func (r *recorder) log(stream, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if stream != "build" {
		panic("stream " + stream)
	}
	r.lines = append(r.lines, line)
	kept := r.watchers[:0]
	for _, w := range r.watchers {
		if w.match(line) {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	r.watchers = kept
}

// output is a line printed by a RUN step; the marker is built by the shell at run time, so the
// step's own command line (which the build also prints) never matches.
func output(marker string) func(string) bool {
	return func(line string) bool { return strings.HasSuffix(line, " "+marker) || line == marker }
}

// when returns a channel closed once a line matching match has been logged.
func (r *recorder) when(match func(string) bool) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	for _, l := range r.lines {
		if match(l) {
			close(ch)
			return ch
		}
	}
	r.watchers = append(r.watchers, watcher{match, ch})
	return ch
}

func (r *recorder) index(match func(string) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, l := range r.lines {
		if match(l) {
			return i
		}
	}
	return -1
}

func (r *recorder) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// TestBuildStreamsOutput: a RUN step's output reaches the log while the build runs, not all at
// the end. The step prints a marker and then waits on a server of the test's, which answers once
// the marker is logged: the build cannot end first, however slow the machine. RUN steps reach that
// server over the host network; without --network, the test engine gives them a loopback of their
// own.
func TestBuildStreamsOutput(t *testing.T) {
	forEachMode(t, func(t *testing.T, e dockertest.Env, b *Builder) {
		if b.cfg.Network == "" {
			cfg := b.cfg
			cfg.Network = "host"
			var err error
			if b, err = New(cfg, b.logger); err != nil {
				t.Fatal(err)
			}
		}
		release := make(chan struct{})
		req := project(t, fmt.Sprintf(`FROM %s
COPY nonce /nonce
RUN m=stream; echo "$m-marker-out"; wget -q -O /dev/null %s/
`, e.BaseImage, gate(t, release)))
		req.Labels = map[string]string{"org.opencontainers.image.revision": "abc123"}
		var rec recorder
		marker := rec.when(output("stream-marker-out"))
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- b.Build(context.Background(), req, rec.log) }()

		select {
		case <-marker: // logged while its step waits for it: streamed, not dumped at the end
		case err := <-done:
			t.Fatalf("Build returned (%v) before the marker line was logged; lines:\n%s", err, strings.Join(rec.all(), "\n"))
		case <-time.After(2 * time.Minute): // only stops a hung test
			t.Errorf("the marker line was not logged while its step waited for it; lines:\n%s", strings.Join(rec.all(), "\n"))
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if t.Failed() {
			return
		}
		t.Logf("build took %s", time.Since(start).Round(time.Millisecond))

		tagLine := rec.index(func(l string) bool { return strings.Contains(l, req.Tags[0]) })
		if m := rec.index(output("stream-marker-out")); tagLine < 0 || m > tagLine {
			t.Errorf("marker at line %d, tagging at line %d: want the marker first", m, tagLine)
		}
		got := e.Docker(t, "image", "inspect", "--format",
			`{{index .Config.Labels "org.opencontainers.image.revision"}}`, req.Tags[0])
		if got != "abc123" {
			t.Errorf("label = %q, want abc123", got)
		}
	})
}

func TestBuildFailures(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		want       []string // each must be in the error (case-insensitive); "a|b" means either
	}{
		{"unknown instruction", "FROM %s\nFROBNICATE now\n", []string{"unknown instruction"}},
		{"failing RUN", "FROM %s\nCOPY nonce /nonce\nRUN m=fail; echo \"$m-reason-out\"; exit 1\n",
			[]string{"fail-reason-out", "exit code: 1|non-zero code: 1"}},
		{"missing COPY source", "FROM %s\nCOPY nothere /x\n", []string{"nothere"}},
	}
	forEachMode(t, func(t *testing.T, e dockertest.Env, b *Builder) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req := project(t, fmt.Sprintf(tt.dockerfile, e.BaseImage))
				var rec recorder
				err := b.Build(context.Background(), req, rec.log)
				if err == nil {
					t.Fatal("Build succeeded")
				}
				if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("err = %v: a context error", err)
				}
				msg := strings.ToLower(err.Error())
				for _, w := range tt.want {
					if !containsAny(msg, strings.Split(w, "|")) {
						t.Errorf("error does not say %q:\n%s", w, err)
					}
				}
				if len(rec.all()) == 0 {
					t.Error("nothing logged")
				}
			})
		}
	})
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestBuildArgsAndTarget(t *testing.T) {
	forEachMode(t, func(t *testing.T, e dockertest.Env, b *Builder) {
		req := project(t, fmt.Sprintf(`FROM %s AS first
ARG GREETING
COPY nonce /nonce
RUN echo "greeting=$GREETING" > /greeting
FROM first AS second
RUN echo second > /second
FROM first AS last
RUN exit 7
`, e.BaseImage))
		// A monorepo layout: the context is a subdirectory, the Dockerfile lies outside it.
		mustWrite(t, filepath.Join(req.Dir, "ctx", "nonce"), nonce(t), 0o644)
		if err := os.Rename(filepath.Join(req.Dir, "Dockerfile"), filepath.Join(req.Dir, "app.Dockerfile")); err != nil {
			t.Fatal(err)
		}
		req.Context, req.Dockerfile = "ctx", "app.Dockerfile"
		req.Stage = "second"
		req.BuildArgs = map[string]string{"GREETING": "hello world", "UNUSED": "x"}
		var rec recorder
		if err := b.Build(context.Background(), req, rec.log); err != nil {
			t.Fatal(err)
		}
		got := e.Docker(t, "run", "--rm", "--network", "none", req.Tags[0], "cat", "/greeting", "/second")
		if got != "greeting=hello world\nsecond" {
			t.Errorf("image holds %q", got)
		}
	})
}

func TestBuildTruncatesLongLines(t *testing.T) {
	forEachMode(t, func(t *testing.T, e dockertest.Env, b *Builder) {
		req := project(t, fmt.Sprintf(`FROM %s
COPY nonce /nonce
RUN head -c 5000000 /dev/zero | tr '\0' x; echo; m=after; echo "$m-long-out"
`, e.BaseImage))
		var rec recorder
		if err := b.Build(context.Background(), req, rec.log); err != nil {
			t.Fatal(err)
		}
		var total, truncated int
		for _, l := range rec.all() {
			total += len(l)
			if len(l) > dockercli.MaxLine+64 {
				t.Errorf("a line of %d bytes reached the log", len(l))
			}
			if strings.Contains(l, "… [line truncated, ") {
				truncated++
			}
		}
		if truncated == 0 {
			t.Error("no line was marked truncated")
		}
		if total > 1<<20 {
			t.Errorf("%d bytes logged for one long line", total)
		}
		// BuildKit drops a step's output beyond its log rate limit (200 KiB/s in 20.10) and says so.
		clipped := rec.index(func(l string) bool { return strings.Contains(l, "[output clipped") }) >= 0
		if !clipped && rec.index(output("after-long-out")) < 0 {
			t.Error("the line after the long one is missing")
		}
	})
}

// TestBuildCancel cancels a build stuck in `sleep 300` and checks that the sleep, which runs in a
// container of the daemon and not under our process, is gone too.
func TestBuildCancel(t *testing.T) {
	forEachMode(t, func(t *testing.T, e dockertest.Env, b *Builder) {
		n := nonce(t)
		// The ENV marks this build's sleep in /proc, apart from any other test's.
		req := project(t, fmt.Sprintf(`FROM %s
ENV SLIPWAY_CANCEL_TEST=%s
RUN m=sleeping; echo "$m-out"; sleep 300
`, e.BaseImage, n))
		var rec recorder
		started := rec.when(output("sleeping-out"))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- b.Build(ctx, req, rec.log) }()

		select {
		case <-started:
		case err := <-done:
			t.Fatalf("Build returned early: %v", err)
		case <-time.After(2 * time.Minute): // only stops a hung test
			t.Fatal("the RUN step never started")
		}
		// The check below must be able to see the sleep, or it proves nothing.
		waitFor(t, 2*time.Minute, "the sleep to show in /proc", func() bool { return len(sleepers(n)) > 0 })

		cancel()
		cancelled := time.Now()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want it to wrap context.Canceled", err)
			}
		case <-time.After(dockercli.KillGrace + time.Minute):
			t.Fatal("Build did not return after cancel")
		}
		// The limits only stop a hung test: together they stay well under the sleep's 300 s, so a
		// sleep that ends within them was ended by the cancel.
		waitFor(t, time.Minute, "the sleep to end", func() bool { return len(sleepers(n)) == 0 })
		t.Logf("build and its sleep gone %s after cancel", time.Since(cancelled).Round(time.Millisecond))
	})
}

// sleepers are the pids of processes running `sleep 300` (what `pgrep -f "sleep 300"` finds)
// with SLIPWAY_CANCEL_TEST=n in their environment.
func sleepers(n string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.Contains(bytes.ReplaceAll(cmdline, []byte{0}, []byte(" ")), []byte("sleep 300")) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err == nil && bytes.Contains(env, []byte("SLIPWAY_CANCEL_TEST="+n)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// gate serves RUN steps that must wait for the test: it answers each request once open is closed,
// and returns its URL.
func gate(t *testing.T, open <-chan struct{}) string {
	t.Helper()
	testOver := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-open:
			fmt.Fprintln(w, "go on")
		case <-r.Context().Done():
		case <-testOver: // Close waits for handlers
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(testOver) })
	return srv.URL
}

// waitFor polls cond: the thing waited for happens in another process, which sends no signal.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
