// Command slipway is a self-hosted deployment server: GitHub pushes in, containers rolled out.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "slipway:", err)
		os.Exit(1)
	}
}

const usage = `usage: slipway <command> [flags]

commands:
  serve     run the HTTP server and the workers (migrates first unless --migrate=false)
  migrate   apply database migrations and exit
  version   print the version

Every flag has an environment twin (SLIPWAY_*); see README.md for the configuration reference.
`

func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], env, stderr)
	case "migrate":
		return migrate(ctx, args[1:], env, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "slipway", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
