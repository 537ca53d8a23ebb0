// Command slipway-bench measures webhook ingest of a real `slipway serve` against what the same
// PostgreSQL can do (pgbench, one single-row insert per transaction) at the same concurrencies, and
// the latency at half the highest ingest rate under open-loop load. It reports numbers against the
// issue's targets; it never fails because a target is missed. With -flood it measures instead the
// server's memory while clients send it maximum-size webhook bodies with bad signatures and slow
// senders trickle theirs (issue 7).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, env, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.flood > 0 {
		return flood(ctx, cfg, stdout, stderr)
	}
	res, err := bench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	printReport(stdout, res)
	if cfg.out != "" {
		if err := writeJSON(cfg.out, res); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "results written to", cfg.out)
	}
	return nil
}
