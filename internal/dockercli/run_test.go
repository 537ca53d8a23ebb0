package dockercli

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run /bin/sh in place of docker: what they check (process group, output, errors) is
// the same for any program.

func TestRunStreamsAndKeepsTail(t *testing.T) {
	var (
		mu    sync.Mutex
		lines []string
	)
	err := Run(context.Background(), Cmd{
		Binary: "/bin/sh",
		Args:   []string{"-c", "echo one; echo two >&2; echo secret-value; exit 3"},
		Scrub:  func(s string) string { return strings.ReplaceAll(s, "secret-value", "<redacted>") },
		Line: func(s string) {
			mu.Lock()
			lines = append(lines, s)
			mu.Unlock()
		},
	})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(e.Output, "one") ||
		!strings.Contains(e.Output, "two") || strings.Contains(err.Error(), "secret-value") {
		t.Errorf("err = %q", err)
	}
	slices.Sort(lines)
	if want := []string{"<redacted>", "one", "two"}; !slices.Equal(lines, want) {
		t.Errorf("lines = %q, want %q", lines, want)
	}
}

func TestRunCancelKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		// The grandchild ignores SIGTERM, as a stuck helper might: only the group SIGKILL ends it.
		script := `sh -c 'trap "" TERM; echo $$ > ` + pidFile + `; echo ready; while :; do sleep 1; done' & wait`
		done <- Run(ctx, Cmd{
			Binary: "/bin/sh",
			Args:   []string{"-c", script},
			Line: func(s string) {
				if s == "ready" {
					once.Do(func() { close(started) })
				}
			},
		})
	}()
	select {
	case <-started:
	case <-time.After(time.Minute): // only stops a hung test
		t.Fatal("child never started")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(KillGrace + time.Minute): // only stops a hung test
		t.Fatal("Run did not return after cancel")
	}
	// The kernel closes a killed process's pipes before it turns into a zombie, so Run may
	// return a moment before the grandchild is seen dead. A grandchild the cancel missed loops for
	// ever, so the deadline only stops a hung test.
	for deadline := time.Now().Add(time.Minute); !gone(pid); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still alive after cancel", pid)
		}
	}
}

func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || zombie(pid)
}

// zombie reports whether pid has exited but not yet been reaped (its parent shell is gone and
// init reaps lazily here).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// A docker child gets only the few variables it needs, never the server's others (the database
// URL, tokens and secrets live there), and set wins over what it passes.
func TestEnv(t *testing.T) {
	t.Setenv("SLIPWAY_DATABASE_URL", "postgres://u:canary-password@db/x")
	t.Setenv("SLIPWAY_GIT_TOKEN", "canary-token")
	t.Setenv("DOCKER_CONTEXT", "elsewhere")
	t.Setenv("HOME", "/home/slipway")
	t.Setenv("DOCKER_HOST", "unix:///old.sock")
	env := Env(map[string]string{"DOCKER_HOST": "unix:///new.sock", "HOME": "", "DOCKER_CONFIG": "/tmp/cfg"})
	for _, tt := range []struct {
		kv   string
		want bool
	}{
		{"SLIPWAY_DATABASE_URL=postgres://u:canary-password@db/x", false},
		{"SLIPWAY_GIT_TOKEN=canary-token", false},
		{"DOCKER_CONTEXT=elsewhere", false},
		{"HOME=/home/slipway", false},
		{"DOCKER_HOST=unix:///old.sock", false},
		{"DOCKER_HOST=unix:///new.sock", true},
		{"DOCKER_CONFIG=/tmp/cfg", true},
	} {
		if got := slices.Contains(env, tt.kv); got != tt.want {
			t.Errorf("%s in env = %v, want %v", tt.kv, got, tt.want)
		}
	}
	for _, kv := range env {
		if strings.Contains(kv, "canary") {
			t.Errorf("a server secret reached the child: %s", kv)
		}
	}
}
