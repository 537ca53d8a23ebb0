package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// options are what the flags ask for.
type options struct {
	url       string // an already running server; empty: build and start one
	secret    string // its webhook secret (with -url)
	serverBin string // a built slipway binary; empty: go build ./cmd/slipway under src
	serverSrc string // what the binary was built from, for the report
	src       string // module root to build from
	dbURL     string // admin database URL (own server) or the server's database (-url)
	dbName    string // database created fresh for the bench and dropped after
	repo      string
	payload   string
	levels    []int
	warmup    time.Duration
	duration  time.Duration
	halfRate  time.Duration // open-loop run at half the best ingest rate
	openConns int           // goroutines (and connections) of the open-loop run
	pgbench   string
	notify    bool   // also run pgbench with a NOTIFY in the insert's transaction
	profile   string // CPU profile of the in-process handler phase; empty: no such phase
	out       string
	// -flood: instead of the ingest benchmark, the memory of the server under flood clients
	// each sending floodBody-byte bodies with bad signatures, plus floodSlow slow senders.
	flood     int
	floodSlow int
	floodBody int64
}

func parseFlags(args, env []string, stderr io.Writer) (options, error) {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			vars[k] = v
		}
	}
	var c options
	var levels string
	fs := flag.NewFlagSet("slipway-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "", "base URL of a running server to load (default: build and start one)")
	fs.StringVar(&c.secret, "secret", vars["SLIPWAY_BENCH_WEBHOOK_SECRET"], "webhook secret of -url (SLIPWAY_BENCH_WEBHOOK_SECRET)")
	fs.StringVar(&c.serverBin, "server-bin", "", "slipway binary to start (default: go build ./cmd/slipway from -src)")
	fs.StringVar(&c.serverSrc, "server-source", "", "what -server-bin was built from, for the report")
	fs.StringVar(&c.src, "src", ".", "module root that -server-bin is built from")
	fs.StringVar(&c.dbURL, "database-url", vars["SLIPWAY_BENCH_DATABASE_URL"],
		"PostgreSQL URL (SLIPWAY_BENCH_DATABASE_URL): an admin database in which -db is created fresh, or with -url the server's own database")
	fs.StringVar(&c.dbName, "db", "slipway_bench", "database created for the bench and dropped after (not with -url)")
	fs.StringVar(&c.repo, "repo", "Codertocat/Hello-World", "repository the server accepts pushes from (the payload's)")
	fs.StringVar(&c.payload, "payload", "testdata/github-webhooks/push.with-new-branch.payload.json", "push payload to send")
	fs.StringVar(&levels, "concurrency", "1,4,16,64", "comma-separated concurrency levels")
	fs.DurationVar(&c.warmup, "warmup", 2*time.Second, "unmeasured load before each ingest level")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "measured time per level, for ingest and for pgbench (whole seconds)")
	fs.DurationVar(&c.halfRate, "half-rate-duration", 0, "length of the open-loop run at half the best ingest rate (0: -duration; negative: skip it)")
	fs.IntVar(&c.openConns, "open-conns", 128, "in-flight limit of the open-loop run (requests beyond it queue in the client, and their wait counts)")
	fs.StringVar(&c.pgbench, "pgbench", defaultPgbench(), "pgbench binary")
	fs.BoolVar(&c.notify, "notify-variant", true, "also run pgbench with pg_notify in the insert's transaction, as the webhook's statement has")
	fs.StringVar(&c.profile, "profile", "", "write a CPU profile of the webhook handler run in this process (same code, same database) to this file")
	fs.StringVar(&c.out, "out", "", "write the results as JSON to this file")
	fs.IntVar(&c.flood, "flood", 0, "instead of the ingest benchmark: this many clients send maximum-size webhook bodies with bad signatures for -duration, and the server's RSS is reported")
	fs.IntVar(&c.floodSlow, "flood-slow", 10, "with -flood: slow senders, each declaring a maximum-size body and sending a byte every 5s")
	fs.Int64Var(&c.floodBody, "flood-body", 25<<20, "with -flood: body size (the server's webhook.max_body_bytes)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for f := range strings.SplitSeq(levels, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return options{}, fmt.Errorf("-concurrency: %q is not a positive integer", f)
		}
		c.levels = append(c.levels, n)
	}
	if c.halfRate == 0 {
		c.halfRate = c.duration
	}
	if c.duration < time.Second {
		return options{}, errors.New("-duration: at least 1s (pgbench counts whole seconds)")
	}
	if c.dbURL == "" {
		return options{}, errors.New("no database: set SLIPWAY_BENCH_DATABASE_URL or -database-url")
	}
	if c.url != "" && c.secret == "" {
		return options{}, errors.New("-url needs -secret (or SLIPWAY_BENCH_WEBHOOK_SECRET)")
	}
	return c, nil
}

// defaultPgbench prefers PostgreSQL 15's own pgbench (the server's version) over the PATH one.
func defaultPgbench() string {
	const pg15 = "/usr/lib/postgresql/15/bin/pgbench"
	if _, err := os.Stat(pg15); err == nil {
		return pg15
	}
	return "pgbench"
}
