package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// createDatabase drops name (a leftover of an interrupted run) and creates it empty; the server
// migrates it on start. It returns the URL of the new database.
func createDatabase(ctx context.Context, adminURL, name string) (string, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", fmt.Errorf("failed to connect to the admin database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("failed to drop database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", fmt.Errorf("failed to create database %s: %w", name, err)
	}
	u, err := url.Parse(adminURL)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		return "", fmt.Errorf("the database URL must be a postgres:// URL")
	}
	u.Path = "/" + name
	return u.String(), nil
}

func dropDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("failed to connect to the admin database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("failed to drop database %s: %w", name, err)
	}
	return nil
}

// benchInsert is pgbench's side: one row shaped like webhook_deliveries (a random text key, a few
// short columns, the received_at index), inserted in its own transaction.
const benchInsertTable = `
DROP TABLE IF EXISTS bench_insert;
CREATE TABLE bench_insert (
    delivery_id  text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    event        text NOT NULL DEFAULT 'push',
    repo         text NOT NULL DEFAULT 'Codertocat/Hello-World',
    ref          text NOT NULL DEFAULT 'refs/heads/master',
    outcome      text NOT NULL DEFAULT 'queued',
    reason       text NOT NULL DEFAULT '',
    status_code  integer NOT NULL DEFAULT 202,
    received_at  timestamptz NOT NULL DEFAULT now(),
    payload      text NOT NULL
);
CREATE INDEX bench_insert_received_at ON bench_insert (received_at DESC);`

const benchInsertScript = `\set n random(1, 2000000000)
INSERT INTO bench_insert (payload) VALUES ('push ' || :n);
`

// benchNotifyScript is the same insert with a NOTIFY in its transaction, as WebhookIngest and
// RunCreate send one: it shows what NOTIFY alone does to the limit. Nobody listens on the channel;
// PostgreSQL queues the notification, and serializes the commit, all the same.
const benchNotifyScript = `\set n random(1, 2000000000)
WITH i AS (INSERT INTO bench_insert (payload) VALUES ('push ' || :n) RETURNING 1) SELECT pg_notify('slipway_bench', 'insert') FROM i;
`

// probe watches the database during a phase. It holds its own connections, never the server's.
type probe struct {
	conn       *pgx.Conn // control: checkpoints, counters
	sampler    *pgx.Conn // pg_stat_activity samples, concurrently with conn
	statements bool      // pg_stat_statements is loaded
	postmaster int       // pid of the server's postmaster, 0 when not on this machine
	ownsQueue  bool      // the database is ours: runs left queued may be cleared between phases
}

func openProbe(ctx context.Context, dbURL string, ownsQueue bool) (*probe, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to the bench database: %w", err)
	}
	sampler, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("failed to connect to the bench database: %w", err)
	}
	p := &probe{conn: conn, sampler: sampler, ownsQueue: ownsQueue}
	// Both are optional: pg_stat_statements must be preloaded (scripts/bench.sh does it), and the
	// postmaster's pid can be read only when PostgreSQL runs on this machine.
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err == nil {
		_, err = conn.Exec(ctx, "SELECT pg_stat_statements_reset()")
		p.statements = err == nil
	}
	var dataDir string
	if err := conn.QueryRow(ctx, "SHOW data_directory").Scan(&dataDir); err == nil {
		if b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid")); err == nil {
			first, _, _ := strings.Cut(string(b), "\n")
			p.postmaster, _ = strconv.Atoi(strings.TrimSpace(first))
		}
	}
	return p, nil
}

func (p *probe) close(ctx context.Context) {
	p.conn.Close(ctx)
	p.sampler.Close(ctx)
}

func (p *probe) createBenchTable(ctx context.Context) error {
	if _, err := p.conn.Exec(ctx, benchInsertTable); err != nil {
		return fmt.Errorf("failed to create bench_insert: %w", err)
	}
	return nil
}

func (p *probe) dropBenchTable(ctx context.Context) error {
	_, err := p.conn.Exec(ctx, "DROP TABLE IF EXISTS bench_insert")
	return err
}

// settle readies the database for a phase: every phase starts right after a checkpoint (so each
// pays the same full-page writes) with fresh statement statistics.
func (p *probe) settle(ctx context.Context) error {
	if _, err := p.conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("failed to checkpoint: %w", err)
	}
	if p.statements {
		if _, err := p.conn.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
			return fmt.Errorf("failed to reset pg_stat_statements: %w", err)
		}
	}
	return nil
}

// runs counts the runs still queued and those a worker has claimed at least once. With clear,
// runs still queued are marked skipped, so that a backlog the single worker could not drain does
// not load the next phase.
func (p *probe) runs(ctx context.Context, clear bool) (queued, attempted int64, err error) {
	err = p.conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'queued'),
		count(*) FILTER (WHERE attempt > 0) FROM runs`).Scan(&queued, &attempted)
	if err != nil {
		return 0, 0, fmt.Errorf("failed to count runs: %w", err)
	}
	if clear && p.ownsQueue && queued > 0 {
		_, err = p.conn.Exec(ctx, `UPDATE runs SET status = 'skipped', error = 'cleared by slipway-bench',
			finished_at = now(), updated_at = now() WHERE status = 'queued'`)
		if err != nil {
			return 0, 0, fmt.Errorf("failed to clear the run backlog: %w", err)
		}
	}
	return queued, attempted, nil
}

// waitBackendsGone waits until no backend of application remains, and a little more for the
// postmaster to reap them.
func (p *probe) waitBackendsGone(ctx context.Context, application string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := p.conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, application).Scan(&n)
		if err != nil {
			return fmt.Errorf("failed to count %s backends: %w", application, err)
		}
		if n == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	return nil
}

// counters are cumulative database statistics; a phase's share is the difference of two.
type counters struct {
	commits  int64
	walSyncs int64
	walBytes float64
}

// counters reads them. Backends publish their statistics up to a second late, so callers wait a
// little after a phase before reading its end.
func (p *probe) counters(ctx context.Context) (counters, error) {
	var c counters
	err := p.conn.QueryRow(ctx, `SELECT
		(SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
		wal_sync, wal_bytes::float8 FROM pg_stat_wal`).Scan(&c.commits, &c.walSyncs, &c.walBytes)
	if err != nil {
		return counters{}, fmt.Errorf("failed to read database statistics: %w", err)
	}
	return c, nil
}

// statements returns the statements of this database that took the most execution time since
// settle; the probe's own queries are left out.
func (p *probe) topStatements(ctx context.Context, n int) ([]statement, error) {
	if !p.statements {
		return nil, nil
	}
	rows, err := p.conn.Query(ctx, `
		SELECT left(regexp_replace(query, '\s+', ' ', 'g'), 300), calls, total_exec_time, mean_exec_time
		FROM pg_stat_statements
		WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND query NOT LIKE '%pg_stat%' AND query NOT ILIKE 'CHECKPOINT%'
		ORDER BY total_exec_time DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("failed to read pg_stat_statements: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (statement, error) {
		var s statement
		return s, r.Scan(&s.Query, &s.Calls, &s.TotalMs, &s.MeanMs)
	})
}

// sampleWaits samples what the active client backends of this database are doing every interval
// until stop is closed: a wait event, or "CPU" when they wait on nothing (running or runnable).
// Cancelling ctx would close the connection, hence the separate stop.
func (p *probe) sampleWaits(ctx context.Context, stop <-chan struct{}, every time.Duration) waitProfile {
	seen := map[string]int{}
	samples := 0
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return newWaitProfile(seen, samples)
		case <-ctx.Done():
			return newWaitProfile(seen, samples)
		case <-t.C:
		}
		rows, err := p.sampler.Query(ctx, `
			SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
			WHERE datname = current_database() AND backend_type = 'client backend'
			  AND state = 'active' AND pid <> pg_backend_pid()`)
		if err != nil {
			return newWaitProfile(seen, samples)
		}
		events, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return newWaitProfile(seen, samples)
		}
		samples++
		for _, e := range events {
			seen[e]++
		}
	}
}

// waitProfile: the average number of active backends, and what share of them waited on what.
type waitProfile struct {
	ActiveBackends float64     `json:"avg_active_backends"`
	Events         []waitShare `json:"events"`
}

type waitShare struct {
	Event string  `json:"event"`
	Share float64 `json:"share"`
}

func newWaitProfile(seen map[string]int, samples int) waitProfile {
	if samples == 0 {
		return waitProfile{}
	}
	total := 0
	for _, n := range seen {
		total += n
	}
	w := waitProfile{ActiveBackends: float64(total) / float64(samples)}
	for e, n := range seen {
		w.Events = append(w.Events, waitShare{Event: e, Share: float64(n) / float64(total)})
	}
	sort.Slice(w.Events, func(i, j int) bool { return w.Events[i].Share > w.Events[j].Share })
	return w
}
