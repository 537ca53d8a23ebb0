package dockercli_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/dockercli"
)

// fakeDocker writes a script standing in for the docker binary and returns its path.
func fakeDocker(t *testing.T, script string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// cli runs the fake binary the way the builder and the registry run docker: through Run, with an
// environment from Env.
type cli struct{ bin, host string }

func newCLI(bin, host string) cli { return cli{bin, host} }

func (c cli) env() []string { return dockercli.Env(map[string]string{"DOCKER_HOST": c.host}) }

func (c cli) Output(ctx context.Context, args ...string) ([]byte, error) {
	var out bytes.Buffer
	err := dockercli.Run(ctx, dockercli.Cmd{Binary: c.bin, Args: args, Env: c.env(), Stdout: &out})
	return out.Bytes(), err
}

func (c cli) Run(ctx context.Context, log func(stream, line string), args ...string) error {
	return dockercli.Run(ctx, dockercli.Cmd{Binary: c.bin, Args: args, Env: c.env(),
		Line: func(line string) { log(dockercli.Stream, line) }})
}

func TestOutputSetsHostAndPassesArguments(t *testing.T) {
	bin := fakeDocker(t, `echo "$DOCKER_HOST"; for a in "$@"; do echo "[$a]"; done`)
	cli := newCLI(bin, "unix:///tmp/other.sock")
	out, err := cli.Output(context.Background(), "run", "-e", "A=$(id); `x` 'y'", "img")
	if err != nil {
		t.Fatal(err)
	}
	want := "unix:///tmp/other.sock\n[run]\n[-e]\n[A=$(id); `x` 'y']\n[img]\n"
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestErrorsSayWhatDockerSaid(t *testing.T) {
	bin := fakeDocker(t, `echo "Error: No such container: api" >&2; exit 1`)
	cli := newCLI(bin, "")
	_, err := cli.Output(context.Background(), "container", "inspect", "--env", "SECRET=hunter2", "api")
	var de *dockercli.Error
	if !errors.As(err, &de) || de.ExitCode != 1 {
		t.Fatalf("error = %#v, want a *dockercli.Error with exit code 1", err)
	}
	if !dockercli.IsNotFound(err) {
		t.Errorf("IsNotFound(%v) = false", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "No such container: api") || strings.Contains(msg, "hunter2") {
		t.Errorf("error message %q: want docker's reason and no arguments", msg)
	}
	if dockercli.IsNotFound(errors.New("no such container")) {
		t.Error("IsNotFound is true for an error that is not docker's")
	}
}

func TestRunStreamsLines(t *testing.T) {
	bin := fakeDocker(t, `echo one; echo two >&2; printf 'three'; exit 2`)
	cli := newCLI(bin, "")
	var (
		mu    sync.Mutex
		lines []string
	)
	err := cli.Run(context.Background(), func(stream, line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, stream+":"+line)
	}, "build")
	var de *dockercli.Error
	if !errors.As(err, &de) || de.ExitCode != 2 || de.Stderr != "two" {
		t.Fatalf("error = %v, want exit code 2 with stderr \"two\"", err)
	}
	slices.Sort(lines) // stdout and stderr interleave freely
	if want := []string{"deploy:one", "deploy:three", "deploy:two"}; !slices.Equal(lines, want) {
		t.Errorf("lines = %q, want %q", lines, want)
	}
}

// TestCancelKillsDocker: cancelling the context sends docker SIGTERM at once. The stand-in says
// when its trap is set, and the test cancels only then; the trap says when SIGTERM came. A docker
// that the cancel did not reach would end only at Run's WaitDelay, by SIGKILL, saying nothing.
func TestCancelKillsDocker(t *testing.T) {
	bin := fakeDocker(t, `trap 'echo got SIGTERM; exit 143' TERM; echo ready; sleep 30 & wait`)
	cli := newCLI(bin, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu    sync.Mutex
		lines []string
	)
	err := cli.Run(ctx, func(_, line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, line)
		if line == "ready" {
			cancel()
		}
	}, "service", "update")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want one wrapping context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(lines, "got SIGTERM") {
		t.Errorf("docker said %q: it never got SIGTERM, so the cancel did not stop it", lines)
	}
}

func TestCancelSaysWhy(t *testing.T) {
	bin := fakeDocker(t, `exec sleep 30`)
	cli := newCLI(bin, "")
	why := errors.New("deploy timed out")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, why)
	defer cancel()
	err := cli.Run(ctx, func(string, string) {}, "pull", "registry.example.com/app:secret-tag")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, why) {
		t.Errorf("error = %v, want one wrapping context.DeadlineExceeded and the cause", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "docker pull: ") || strings.Contains(msg, "secret-tag") {
		t.Errorf("error message %q: want it to name docker pull and no arguments", msg)
	}
}
