package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// gitRun describes one git invocation.
type gitRun struct {
	gitDir   string    // --git-dir, if any
	workTree string    // --work-tree, if any
	config   []string  // "key=value" pairs passed with -c; never secrets
	args     []string  // subcommand and its arguments
	env      []string  // extra environment, after the base
	scrub    scrubber  // secrets to cut from error text
	stdin    io.Reader // nil: /dev/null
	stdout   io.Writer // nil: collected and returned by run
	// lock, if set, is inherited by git so the mirror's flock stays held
	// while any git process of ours, or a helper it started, is alive.
	lock *os.File
}

// passedEnv are the only host variables git gets: where to find helpers, how
// to reach the network and which CAs to trust. Everything else, GIT_* in
// particular (GIT_DIR, GIT_TRACE_CURL, ...), stays out.
var passedEnv = []string{
	"PATH", "TMPDIR",
	"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
	"http_proxy", "https_proxy", "no_proxy", "all_proxy",
	"SSL_CERT_FILE", "SSL_CERT_DIR", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
}

// waitDelay bounds how long a killed git may hold its output pipes open.
const waitDelay = 10 * time.Second

// stderrCap bounds how much of git's stderr is kept for an error message.
const stderrCap = 64 << 10

func (c *Cache) command(ctx context.Context, r gitRun) *exec.Cmd {
	args := make([]string, 0, 2*len(r.config)+1+len(r.args))
	for _, kv := range r.config {
		args = append(args, "-c", kv)
	}
	if r.gitDir != "" {
		args = append(args, "--git-dir="+r.gitDir)
	}
	if r.workTree != "" {
		args = append(args, "--work-tree="+r.workTree)
	}
	args = append(args, r.args...)

	cmd := exec.CommandContext(ctx, c.git, args...)
	cmd.Dir = c.dir
	cmd.Env = c.environ(r.env)
	cmd.Stdin = r.stdin
	if r.lock != nil {
		cmd.ExtraFiles = []*os.File{r.lock}
	}
	// git fetch starts helpers (git-remote-https, index-pack). Cancelling
	// signals the whole process group, and with SIGTERM rather than SIGKILL
	// so git removes its own ref lock files on the way out; anything still
	// alive after waitDelay gets the leader killed and keeps the inherited
	// flock until it exits.
	// Pdeathsig: a git outliving a Slipway that died would hold the mirror's flock.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay
	return cmd
}

func (c *Cache) environ(extra []string) []string {
	env := []string{
		"HOME=" + c.home,
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ALLOW_PROTOCOL=file:http:https",
		"LC_ALL=C",
	}
	for _, k := range passedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, extra...)
}

// authEnv passes the token as an HTTP header through git's environment
// config, which, unlike -c or a URL, is not visible in /proc/*/cmdline.
func authEnv(token string) []string {
	if token == "" {
		return nil
	}
	return []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Basic " + basicAuth(token),
	}
}

// run executes git and returns its stdout, or an error carrying git's
// scrubbed stderr.
func (c *Cache) run(ctx context.Context, r gitRun) ([]byte, error) {
	cmd := c.command(ctx, r)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if r.stdout != nil {
		cmd.Stdout = r.stdout
	}
	stderr := &headBuffer{max: stderrCap}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr // "signal: killed" hides why
		}
		verb := "git"
		if len(r.args) > 0 {
			verb += " " + r.args[0]
		}
		return nil, fmt.Errorf("%s: %w%s", verb, err, errorDetail(r.scrub.scrub(stderr.text())))
	}
	return stdout.Bytes(), nil
}

// errorDetail keeps the end of git's stderr, where the fatal line is.
func errorDetail(stderr string) string {
	const keep = 2 << 10
	stderr = strings.TrimSpace(stderr)
	if len(stderr) > keep {
		stderr = "…" + stderr[len(stderr)-keep:]
	}
	if stderr == "" {
		return ""
	}
	return ": " + stderr
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *headBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.buf.Write(p[:max(room, 0)])
		b.truncated = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// text drops a partial last line when output was cut, so a secret split by
// the cut cannot escape the scrubber half-written.
func (b *headBuffer) text() string {
	s := b.buf.String()
	if b.truncated {
		s = s[:strings.LastIndexByte(s, '\n')+1]
	}
	return s
}

func lookGit(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("finding git binary %q: %w", name, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("resolving git binary %q: %w", path, err)
	}
	return abs, nil
}

func (c *Cache) checkVersion(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := c.run(ctx, gitRun{args: []string{"version"}})
	if err != nil {
		return fmt.Errorf("checking git version: %w", err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(out), "git version %d.%d", &major, &minor); err != nil {
		return fmt.Errorf("parsing git version %q: %w", strings.TrimSpace(string(out)), err)
	}
	if major < minGitVersion[0] || major == minGitVersion[0] && minor < minGitVersion[1] {
		return fmt.Errorf("git %d.%d is too old: need %d.%d or later for GIT_CONFIG_COUNT",
			major, minor, minGitVersion[0], minGitVersion[1])
	}
	return nil
}
