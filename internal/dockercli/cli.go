package dockercli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Stream is the LogFunc stream CLI.Run and CLI.RunCollapsed write to, and every target with them.
const Stream = "deploy"

// CLI runs one docker binary against one engine, for the deploy targets' many short commands.
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
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &CLI{binary: binary, logger: logger}
	if host != "" {
		c.env = Env(map[string]string{"DOCKER_HOST": host})
	}
	return c
}

// Output runs docker with args and returns its standard output. Standard error ends up in the
// returned *Error, if docker fails.
func (c *CLI) Output(ctx context.Context, args ...string) ([]byte, error) {
	var stdout bytes.Buffer
	err := c.run(ctx, Cmd{Args: args, Stdout: &stdout})
	return stdout.Bytes(), err
}

// Run runs docker with args, sending its standard output and error to log line by line (stream
// "deploy"). The last lines also end up in the returned *Error.
func (c *CLI) Run(ctx context.Context, log deploy.LogFunc, args ...string) error {
	return c.run(ctx, Cmd{Args: args, Line: func(line string) { log(Stream, line) }})
}

// RunCollapsed is Run for commands that redraw a progress display (docker service update
// --detach=false): a line identical to the one before it is dropped, so a minute's polling does not
// become hundreds of log lines.
func (c *CLI) RunCollapsed(ctx context.Context, log deploy.LogFunc, args ...string) error {
	return c.run(ctx, Cmd{Args: args, Line: func(line string) { log(Stream, line) }, Collapse: true})
}

// Inspect runs `docker <object> inspect` on name ("container", "service") and decodes its JSON
// into v. It reports false, and no error, when docker says there is no such object.
func (c *CLI) Inspect(ctx context.Context, object, name string, v any) (found bool, err error) {
	out, err := c.Output(ctx, object, "inspect", "--format", "{{json .}}", name)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(out, v); err != nil {
		return false, fmt.Errorf("reading docker's answer: %w", err)
	}
	return true, nil
}

func (c *CLI) run(ctx context.Context, cmd Cmd) error {
	cmd.Binary, cmd.Env = c.binary, c.env
	start := time.Now()
	err := Run(ctx, cmd)
	c.logger.DebugContext(ctx, "docker command", "command", subcommand(cmd.Args),
		"duration", time.Since(start).Round(time.Millisecond), "error", err)
	return err
}
