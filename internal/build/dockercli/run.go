// Package dockercli runs the docker CLI for Slipway's build and registry adapters: in its own
// process group so that cancelling kills it and every helper it started (the buildx plugin is a
// child process), with its output streamed line by line and the last lines kept for the error.
//
// It lives under internal/build because builds are its main user; internal/registry uses it for
// docker push.
package dockercli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// KillGrace is how long the docker CLI gets between SIGTERM and SIGKILL once its context is done.
// The CLI uses it to tell the daemon (classic builder: close the connection; BuildKit: end the
// session), which then stops the build's containers.
const KillGrace = 5 * time.Second

// Cmd is one docker CLI invocation.
type Cmd struct {
	Binary string   // path of the docker CLI
	Args   []string // arguments after the binary; never through a shell
	Env    []string // the child's whole environment
	Dir    string   // working directory, "" for ours
	// Line receives every line of stdout and stderr as it comes, at most MaxLine bytes long.
	// Lines of the two streams interleave in the order they are read.
	Line func(line string)
	// Scrub, if set, rewrites each line before it is passed on or kept for the error: the place
	// to cut a secret that must never reach a log.
	Scrub func(string) string
	// Noise, if set, picks lines that are logged but not worth a place among the few that the
	// error keeps (BuildKit's step digests and timings).
	Noise func(string) bool
}

// Run runs c until it exits or ctx is done. A failure returns an error ending in the last lines
// of output; when ctx is done the error wraps ctx.Err() rather than "signal: terminated".
func Run(ctx context.Context, c Cmd) error {
	cmd := exec.CommandContext(ctx, c.Binary, c.Args...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	cmd.Stdin = nil // /dev/null: docker must never wait for a terminal

	var last tail
	emit := func(line string) {
		if c.Scrub != nil {
			line = c.Scrub(line)
		}
		if c.Noise == nil || !c.Noise(line) {
			last.add(line)
		}
		if c.Line != nil {
			c.Line(line)
		}
	}
	stdout, stderr := newLineWriter(MaxLine, emit), newLineWriter(MaxLine, emit)
	// exec copies each pipe in its own goroutine and waits for both before Wait returns, so the
	// writers see every byte and need no lock of their own.
	cmd.Stdout, cmd.Stderr = stdout, stderr

	k := &killer{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return k.cancel(cmd.Process.Pid) }
	// A grandchild that ignores both signals could hold the pipes open for ever; WaitDelay closes
	// them after the group had its SIGKILL.
	cmd.WaitDelay = KillGrace + 5*time.Second

	err := cmd.Run()
	k.exited()
	stdout.Close()
	stderr.Close()
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	}
	detail := last.String()
	if detail == "" {
		return err
	}
	return &Error{Err: err, Output: detail}
}

// Error is a failed docker command with the last lines of its output.
type Error struct {
	Err    error
	Output string // last non-blank lines, scrubbed
}

func (e *Error) Error() string { return e.Err.Error() + "; last output:\n" + e.Output }
func (e *Error) Unwrap() error { return e.Err }

// killer signals the CLI's process group: SIGTERM at once, SIGKILL after KillGrace unless the
// CLI has exited by then.
type killer struct {
	mu    sync.Mutex
	done  bool
	timer *time.Timer
}

func (k *killer) cancel(pgid int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done {
		return os.ErrProcessDone
	}
	k.timer = time.AfterFunc(KillGrace, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		// Once the leader is reaped its pid (and so the group id) may be reused: never signal
		// after exited.
		if !k.done {
			syscall.Kill(-pgid, syscall.SIGKILL) //nolint:errcheck // best effort, Wait reports
		}
	})
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return fmt.Errorf("signalling docker process group %d: %w", pgid, err)
	}
	return nil
}

// exited is called once Wait has returned.
func (k *killer) exited() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.done = true
	if k.timer != nil {
		k.timer.Stop()
	}
}

// Env returns the current process's environment with the variables named in set replaced (or
// removed, when the value is ""), so the child gets exactly the docker settings we chose.
func Env(set map[string]string) []string {
	env := make([]string, 0, len(os.Environ())+len(set))
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if _, ok := set[name]; ok {
			continue
		}
		env = append(env, kv)
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if v := set[k]; v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}
