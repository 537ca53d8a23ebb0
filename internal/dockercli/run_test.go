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
	case <-time.After(10 * time.Second):
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
	case <-time.After(KillGrace + 10*time.Second):
		t.Fatal("Run did not return after cancel")
	}
	// The kernel closes a killed process's pipes before it turns into a zombie, so Run may
	// return a moment before the grandchild is seen dead.
	for deadline := time.Now().Add(5 * time.Second); !gone(pid); time.Sleep(50 * time.Millisecond) {
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

func TestEnv(t *testing.T) {
	t.Setenv("SLIPWAY_DOCKERCLI_KEEP", "1")
	t.Setenv("SLIPWAY_DOCKERCLI_DROP", "1")
	t.Setenv("SLIPWAY_DOCKERCLI_SET", "old")
	env := Env(map[string]string{"SLIPWAY_DOCKERCLI_DROP": "", "SLIPWAY_DOCKERCLI_SET": "new"})
	for _, tt := range []struct {
		kv   string
		want bool
	}{
		{"SLIPWAY_DOCKERCLI_KEEP=1", true},
		{"SLIPWAY_DOCKERCLI_DROP=1", false},
		{"SLIPWAY_DOCKERCLI_SET=old", false},
		{"SLIPWAY_DOCKERCLI_SET=new", true},
	} {
		if got := slices.Contains(env, tt.kv); got != tt.want {
			t.Errorf("%s in env = %v, want %v", tt.kv, got, tt.want)
		}
	}
}
