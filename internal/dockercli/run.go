// Package dockercli runs the docker command-line client for the two calls where it earns its
// place, builds (BuildKit through buildx) and pushes (credential helpers, a per-push config):
// always with an argument list (never a shell) and an allow-listed environment (never the server's
// secrets), under the caller's context, in a process group of its own so that cancelling kills it
// and every helper it started, with its output streamed line by line and its last lines kept for
// the error. Everything else goes through the Engine API (internal/engine).
package dockercli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
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
	Env    []string // the child's whole environment; nil inherits ours
	Dir    string   // working directory, "" for ours
	// Stdout, if set, receives standard output as it is, for commands whose output is data
	// (inspect --format); Line then sees standard error only.
	Stdout io.Writer
	// Line receives every line of output as it comes, at most MaxLine bytes long. Lines of the
	// two streams interleave in the order they are read, from two goroutines.
	Line func(line string)
	// Collapse drops a line identical to the one before it on the same stream: a command that
	// redraws a progress display (docker service update --detach=false) repeats itself.
	Collapse bool
	// Scrub, if set, rewrites each line before it is passed on or kept for the error: the place
	// to cut a secret that must never reach a log.
	Scrub func(string) string
	// Noise, if set, picks lines that are logged but not worth a place among the few that the
	// error keeps (BuildKit's step digests and timings).
	Noise func(string) bool
}

// Run runs c until it exits or ctx is done. A failure returns an *Error holding the last lines
// of output; when ctx is done the error wraps ctx.Err() and the context's cause rather than
// "signal: terminated".
func Run(ctx context.Context, c Cmd) error {
	cmd := exec.CommandContext(ctx, c.Binary, c.Args...)
	cmd.Env = c.Env
	cmd.Dir = c.Dir
	cmd.Stdin = nil // /dev/null: docker must never wait for a terminal

	var last, lastErr tail
	emit := func(keep *tail) func(string) {
		return func(line string) {
			if c.Scrub != nil {
				line = c.Scrub(line)
			}
			if c.Noise == nil || !c.Noise(line) {
				last.add(line)
				if keep != nil {
					keep.add(line)
				}
			}
			if c.Line != nil {
				c.Line(line)
			}
		}
	}
	// exec copies each pipe in its own goroutine and waits for both before Wait returns, so the
	// writers see every byte and need no lock of their own.
	stderr := newLineWriter(MaxLine, c.Collapse, emit(&lastErr))
	var stdout *lineWriter
	cmd.Stdout, cmd.Stderr = c.Stdout, stderr
	if c.Stdout == nil {
		stdout = newLineWriter(MaxLine, c.Collapse, emit(nil))
		cmd.Stdout = stdout
	}

	k := &killer{}
	// Its own group, so a cancel reaches docker's children. Pdeathsig, so a Slipway that dies
	// (SIGKILL, OOM) leaves no build or push running for nobody: a build step that prints nothing
	// would never notice its reader was gone. (Pdeathsig follows the thread that started the child;
	// Slipway locks no goroutine to a thread, so the runtime never ends one under it.)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return k.cancel(cmd.Process.Pid) }
	// A grandchild that ignores both signals could hold the pipes open for ever; WaitDelay closes
	// them after the group had its SIGKILL.
	cmd.WaitDelay = KillGrace + 5*time.Second

	err := cmd.Run()
	k.exited()
	if stdout != nil {
		stdout.Close()
	}
	stderr.Close()
	if err == nil {
		return nil
	}
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	// A killed docker says nothing useful; the context says why it was killed.
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
		if cause := context.Cause(ctx); cause != ctxErr {
			err = fmt.Errorf("%w (%w)", ctxErr, cause)
		}
	}
	return &Error{
		Command:  subcommand(c.Args),
		ExitCode: code,
		Stderr:   lastErr.String(),
		Output:   last.String(),
		Err:      err,
	}
}

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

// passed are the server's own variables a docker child may see: where to find programs and its
// home (plugins, the default config), the locale, and the engine's address and TLS settings.
// Nothing else of the server's environment reaches a child: it holds the database URL, tokens and
// secrets. DOCKER_CONTEXT is never passed, so a context chosen in the server's environment cannot
// point a child at another engine.
var passed = []string{"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"}

// Env is the whole environment of a docker child: the few variables in passed, with set on top
// (a value of "" removes the variable).
func Env(set map[string]string) []string {
	vars := map[string]string{}
	for _, k := range passed {
		if v, ok := os.LookupEnv(k); ok {
			vars[k] = v
		}
	}
	maps.Copy(vars, set)
	env := make([]string, 0, len(vars))
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		if vars[k] != "" {
			env = append(env, k+"="+vars[k])
		}
	}
	return env
}
