// Package dockercli runs the docker command-line client for the deploy targets: always with an
// argument list (never a shell), under the caller's context, with output streamed as log lines.
// Slipway drives the CLI rather than the Engine API so that the server behaves exactly like an
// operator's own `docker` commands, credentials helpers and contexts included.
package dockercli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Stream is the LogFunc stream every target writes to.
const Stream = "deploy"

// waitDelay bounds how long Wait waits for output pipes after the context killed docker: a
// plugin or credential helper it started could otherwise hold them open indefinitely.
const waitDelay = 5 * time.Second

// CLI runs one docker binary against one engine.
type CLI struct {
	binary string
	env    []string // nil: inherit the server's environment
	logger *slog.Logger
}

// New returns a CLI running binary ("docker" when empty) with DOCKER_HOST set to host, or the
// server's own DOCKER_HOST when host is empty.
func New(binary, host string, logger *slog.Logger) *CLI {
	if binary == "" {
		binary = "docker"
	}
	c := &CLI{binary: binary, logger: logger}
	if host != "" {
		c.env = withEnv(os.Environ(), "DOCKER_HOST", host)
	}
	return c
}

// withEnv returns env with name set to value, dropping any earlier setting of name.
func withEnv(env []string, name, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

// Error is a docker command that ran and failed.
type Error struct {
	Args     []string // the subcommand and its arguments, without the binary
	ExitCode int      // -1 when docker was killed
	Stderr   string   // trimmed, capped
	Err      error
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("docker %s: %v", subcommand(e.Args), e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether err is docker saying the object it was asked about does not exist.
// The CLI has no exit code for that, and its wording changed between versions ("No such
// container", "no such service", "No such object"), so this is a case-insensitive match.
func IsNotFound(err error) bool {
	var de *Error
	return errors.As(err, &de) && strings.Contains(strings.ToLower(de.Stderr), "no such ")
}

// subcommand names a call in errors and logs without its arguments, which can hold environment
// values (docker run -e) that must not leak into logs.
func subcommand(args []string) string {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") || len(words) == 2 {
			break
		}
		words = append(words, a)
	}
	return strings.Join(words, " ")
}

// Output runs docker with args and returns its standard output. Standard error ends up in the
// returned *Error, if docker fails.
func (c *CLI) Output(ctx context.Context, args ...string) ([]byte, error) {
	var stdout bytes.Buffer
	stderr := &cappedBuffer{max: maxStderr}
	err := c.run(ctx, args, &stdout, stderr)
	if err != nil {
		return stdout.Bytes(), c.wrap(ctx, args, err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// Run runs docker with args, sending its standard output and error to log line by line (stream
// "deploy"). The last lines of standard error also end up in the returned *Error.
func (c *CLI) Run(ctx context.Context, log deploy.LogFunc, args ...string) error {
	return c.stream(ctx, log, false, args)
}

// RunCollapsed is Run for commands that redraw a progress display (docker service update
// --detach=false): a line identical to the one before it is dropped, so a minute's polling does not
// become hundreds of log lines.
func (c *CLI) RunCollapsed(ctx context.Context, log deploy.LogFunc, args ...string) error {
	return c.stream(ctx, log, true, args)
}

func (c *CLI) stream(ctx context.Context, log deploy.LogFunc, collapse bool, args []string) error {
	out := NewLineWriter(func(line string) { log(Stream, line) })
	out.Collapse = collapse
	stderr := &cappedBuffer{max: maxStderr}
	errw := NewLineWriter(func(line string) { log(Stream, line) })
	err := c.run(ctx, args, out, io.MultiWriter(errw, stderr))
	out.Flush()
	errw.Flush()
	if err != nil {
		return c.wrap(ctx, args, err, stderr.String())
	}
	return nil
}

func (c *CLI) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, c.binary, args...)
	cmd.Env = c.env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = waitDelay
	start := time.Now()
	err := cmd.Run()
	c.logger.DebugContext(ctx, "docker command", "command", subcommand(args),
		"duration", time.Since(start).Round(time.Millisecond), "error", err)
	return err
}

func (c *CLI) wrap(ctx context.Context, args []string, err error, stderr string) error {
	code := -1
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	}
	// A killed docker says nothing useful; the context says why it was killed.
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
	}
	return &Error{Args: args, ExitCode: code, Stderr: strings.TrimSpace(stderr), Err: err}
}

// maxStderr keeps the tail of standard error that goes into an Error: the reason docker gives
// is at the end.
const maxStderr = 2048

// cappedBuffer keeps the last max bytes written to it.
type cappedBuffer struct {
	max int
	buf []byte
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *cappedBuffer) String() string { return strings.ToValidUTF8(string(b.buf), "\uFFFD") }
