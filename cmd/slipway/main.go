// Command slipway is a self-hosted deployment server: GitHub pushes in, containers rolled out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=..." (see the Dockerfile).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if ee, ok := errors.AsType[*exitError](err); !ok || ee.err != nil {
			fmt.Fprintln(os.Stderr, "slipway:", err)
		}
	}
	os.Exit(exitCode(err))
}

// exitError ends the process with code; err (nil when the command already said why) is printed.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError is a command line slipway does not understand: exit status 2, as flag packages do.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := errors.AsType[*exitError](err); ok {
		return ee.code
	}
	return 1
}

// command is one subcommand. Its flags are those newFlagSet gives its name.
type command struct {
	name, summary, about string
	run                  func(ctx context.Context, args, env []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"serve", "run the HTTP server and the workers",
		"Serve GitHub webhooks, the API and the metrics, and run the workers that build, push and deploy.\n" +
			"Migrates the database first unless --migrate=false.",
		func(ctx context.Context, args, env []string, _, stderr io.Writer) error {
			return serve(ctx, args, env, stderr)
		}},
	{"migrate", "apply database migrations and exit",
		"Apply the database migrations that are not applied yet, and exit.", migrate},
	{"doctor", "check that this host can run slipway",
		"Check the configuration, the database and its migrations, docker and its engine, BuildKit,\n" +
			"the registry logins, git and the AWS credentials, one line each. Exit status 1 when a check fails.", doctor},
	{"hash-password", "hash a dashboard password for auth.users",
		"Read a password from standard input (its first line) and print its argon2id hash, for\n" +
			"auth.users[].password_hash. The password is never echoed or logged.", hashPassword},
	{"healthcheck", "ask the server on this host whether it is ready",
		"GET /readyz on the address serve listens on (SLIPWAY_LISTEN_ADDR, else listen_addr; a wildcard\n" +
			"host is asked over loopback). Exit status 0 on 200, else 1 with one line saying why. Reads no\n" +
			"secret and needs no database URL: the container image's HEALTHCHECK.", healthcheck},
	{"version", "print the version", "Print the version.",
		func(_ context.Context, _, _ []string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "slipway", versionString())
			return nil
		}},
}

func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: slipway <command> [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun `slipway <command> --help` for a command's flags. `slipway --version` prints the version.\n" +
		"Every setting has an environment variable (SLIPWAY_*); see README.md for the configuration reference.\n")
	return b.String()
}

// help is a command's own usage: its description and its flags.
func help(c command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: slipway %s", c.name)
	fs, _ := newFlagSet(c.name, io.Discard)
	var flags strings.Builder
	fs.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		fmt.Fprintf(&flags, "  --%s %s\n        %s\n", f.Name, arg, text)
	})
	if flags.Len() > 0 {
		b.WriteString(" [flags]")
	}
	fmt.Fprintf(&b, "\n\n%s\n", c.about)
	if flags.Len() > 0 {
		b.WriteString("\nflags:\n" + flags.String())
	}
	b.WriteString("  -h, --help\n        show this help\n")
	return b.String()
}

func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return usageError("no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c, ok := lookup(args[1]); ok {
				fmt.Fprint(stdout, help(c))
				return nil
			}
		}
		fmt.Fprint(stdout, usage())
		return nil
	case "-version", "--version":
		args = []string{"version"}
	}
	c, ok := lookup(args[0])
	if !ok {
		fmt.Fprint(stderr, usage())
		return usageError("unknown command %q", args[0])
	}
	// The flags are checked here, so that --help answers before anything is loaded; the command
	// parses them again.
	fs, _ := newFlagSet(c.name, io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, help(c))
			return nil
		}
		fmt.Fprint(stderr, help(c))
		return usageError("%s: %w", c.name, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, help(c))
		return usageError("%s: unexpected argument %q", c.name, fs.Arg(0))
	}
	return c.run(ctx, args[1:], env, stdout, stderr)
}

// versionString is the version stamped at build time; a build without one says which commit
// it was built from, when Go recorded it.
func versionString() string {
	if version != "dev" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev == "" {
		return version
	}
	return fmt.Sprintf("%s (commit %s%s)", version, rev, dirty)
}
