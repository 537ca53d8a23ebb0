package web_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
	"github.com/slipway-dev/slipway/internal/web"
	"github.com/slipway-dev/slipway/migrations"
)

// The dashboard's benchmarks (issue 9): server time of each page through the real router, as a
// logged-in viewer, on a database of SLIPWAY_BENCH_DEPLOYMENTS deployments (default 1,000,000,
// with ten log lines each on average), and the process's RSS while ten clients tail four running
// deployments. The seeded database, slipway_bench_<scale>, is kept and reused by later runs: a
// million rows take minutes to write. EXPLAIN (ANALYZE, BUFFERS) of every query a page ran goes to
// dashboard-explain-<scale>.txt under SLIPWAY_BENCH_OUT (default the system temp dir).
//
//	go test -run '^$' -bench BenchmarkDashboardPages -benchtime 200x ./internal/web
//	go test -run '^$' -bench BenchmarkDashboardLogTailRSS -benchtime 1x ./internal/web
//
// Targets, not assertions: p95 <= 50 ms per page.

const benchDefaultDeployments = 1_000_000

type benchEnv struct {
	n         int64 // deployments seeded
	st        *store.Store
	tracer    *captureTracer
	router    http.Handler
	dash      *web.Dashboard
	cookie    *http.Cookie
	typicalID int64 // a deployment with a 5-10 line log, half way down the history
	longID    int64 // one with a 2,500 line log

	genericMu sync.Mutex
	generic   *pgx.Conn // explainGeneric's
}

var (
	benchOnce sync.Once
	benchE    *benchEnv
	benchErr  error
)

// benchScale is SLIPWAY_BENCH_DEPLOYMENTS, at least 1,000 (the long logs are one in a thousand).
func benchScale(b *testing.B) int64 {
	v := os.Getenv("SLIPWAY_BENCH_DEPLOYMENTS")
	if v == "" {
		return benchDefaultDeployments
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 10, 64)
	if err != nil || n < 1000 {
		b.Fatalf("SLIPWAY_BENCH_DEPLOYMENTS=%q: want a number of deployments >= 1000", v)
	}
	return n
}

// setupBench seeds (or reuses) the database and builds the router, once per process.
func setupBench(b *testing.B) *benchEnv {
	b.Helper()
	base := os.Getenv("SLIPWAY_BENCH_DATABASE_URL")
	if base == "" {
		base = testenv.Require(b, "SLIPWAY_TEST_DATABASE_URL")
	}
	n := benchScale(b)
	benchOnce.Do(func() {
		benchErr = errors.New("setting the benchmark up failed (in the first benchmark to run)")
		benchE, benchErr = newBenchEnv(b, base, n)
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchE
}

func newBenchEnv(b *testing.B, base string, n int64) (*benchEnv, error) {
	ctx := context.Background()
	dbURL, err := benchDatabase(ctx, base, n)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	cfg.MaxConns = 20
	tracer := &captureTracer{}
	cfg.ConnConfig.Tracer = tracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	st := store.New(pool)
	dash := web.NewDashboard(web.DashboardDeps{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	router := newTestRouter(b, st, web.Deps{API: st, Dashboard: dash}, io.Discard)
	e := &benchEnv{n: n, st: st, tracer: tracer, router: router, dash: dash, cookie: login(b, router, "viewer")}
	e.longID = n/2000*1000 + 500
	e.typicalID = n/2 + 1
	if e.typicalID%1000 == 500 {
		e.typicalID++
	}
	return e, nil
}

// benchDatabase returns the URL of slipway_bench_<n>, migrated and seeded with n deployments. A
// database left half seeded (no bench_seed row) is dropped and made again.
func benchDatabase(ctx context.Context, base string, n int64) (string, error) {
	ms, err := store.LoadMigrations(migrations.FS)
	if err != nil {
		return "", err
	}
	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer admin.Close(ctx)
	// Two benchmark processes at once seed one database once.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7332)"); err != nil {
		return "", err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7332)") //nolint:errcheck
	name := fmt.Sprintf("slipway_bench_%d", n)
	dbURL := testenv.WithDatabase(base, name)
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		var seconds float64
		err := func() error {
			c, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				return err
			}
			defer c.Close(ctx)
			return c.QueryRow(ctx, "SELECT seconds FROM bench_seed WHERE scale = $1", n).Scan(&seconds)
		}()
		if err == nil {
			benchLogf("reusing %s (seeded in %.0f s)", name, seconds)
			return dbURL, testenv.Migrate(ctx, dbURL, ms) // newer migrations, if any
		}
		benchLogf("%s is incomplete (%v): seeding it again", name, err)
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			return "", err
		}
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", err
	}
	if err := testenv.Migrate(ctx, dbURL, ms); err != nil {
		return "", err
	}
	start := time.Now()
	if err := benchSeed(ctx, dbURL, n); err != nil {
		return "", fmt.Errorf("seeding %s: %w", name, err)
	}
	benchLogf("seeded %s in %s", name, time.Since(start).Round(time.Second))
	return dbURL, nil
}

// benchLogf reports the seeding on stderr: a parent benchmark's log is not printed once it ran
// sub-benchmarks, and a seed of minutes wants its progress seen.
func benchLogf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "dashboard benchmark: "+format+"\n", args...)
}

// benchSeedSQL writes the history, one statement per table. Deployments come in blocks of 25
// forming 10 runs of 1 to 5 deployments (2.5 on average); a run deploys distinct services of one
// repository. Everything else is a hash of the row's number, so a scale always seeds the same
// rows: 20 repositories × 10 services, in production and (even services) staging: 300 keys over
// two years; 85% pushes (70% of them to main), 6% redeploys, 5% rollbacks, 4% manual deploys;
// 88% succeeded, 6% failed, 2% cancelled, 3% superseded, 1% rolled back, the 5 newest queued.
// Logs: 5 to 10 lines per deployment, and 2,500 for one in a thousand.
//
// Placeholders: {N} deployments, {R} run slots.
const benchSeedSQL = `
INSERT INTO runs (id, trigger, repo, ref, branch, before_sha, after_sha, clone_url, pusher, message,
	status, attempt, run_after, created_at, claimed_at, finished_at, updated_at)
SELECT r + 1, x.trig, x.repo, 'refs/heads/' || x.branch, x.branch,
	md5((r - 1)::text) || substr(md5('s' || (r - 1)), 1, 8), md5(r::text) || substr(md5('s' || r), 1, 8),
	'https://github.com/' || x.repo || '.git', x.pusher,
	CASE x.trig WHEN 'push' THEN 'Change #' || r || ': tighten the retry loop and its tests'
		WHEN 'rollback' THEN 'Roll back: error rate up after change #' || (r - 3)
		WHEN 'redeploy' THEN 'Redeploy to pick up the rotated secret'
		ELSE 'Deploy main by hand' END,
	'planned', 1, x.at, x.at, x.at + interval '1 second', x.at + interval '1 second', x.at + interval '1 second'
FROM generate_series(0, {R} - 1) r
CROSS JOIN LATERAL (SELECT abs(hashint8extended(r, 1)) % 20 AS rp, abs(hashint8extended(r, 2)) % 100 AS t,
	abs(hashint8extended(r, 4)) % 100 AS bh, abs(hashint8extended(r, 6)) AS ph) h
CROSS JOIN LATERAL (SELECT
	'acme/repo-' || lpad(h.rp::text, 2, '0') AS repo,
	CASE WHEN h.t < 85 THEN 'push' WHEN h.t < 91 THEN 'redeploy' WHEN h.t < 96 THEN 'rollback' ELSE 'manual' END AS trig,
	CASE WHEN h.t >= 85 OR h.bh < 70 THEN 'main' WHEN h.bh < 80 THEN 'release/2024.' || (r % 12 + 1)
		ELSE 'feature/f-' || (abs(hashint8extended(r, 5)) % 500) END AS branch,
	CASE WHEN h.t < 85 OR h.t >= 96 THEN 'dev-' || lpad((h.ph % 40)::text, 2, '0') ELSE 'ops-' || (h.ph % 5) END AS pusher,
	timestamptz '2024-01-01 00:00:00+00' + (r::float8 / {R}) * interval '730 days' AS at) x
WHERE (r / 10) * 25 + ('{0,1,4,6,10,11,13,18,20,21}'::int[])[r % 10 + 1] < {N};

WITH g AS (
	SELECT i, (i / 25) * 10 + ('{0,1,1,1,2,2,3,3,3,3,4,5,5,6,6,6,6,6,7,7,8,9,9,9,9}'::int[])[i % 25 + 1] AS r
	FROM generate_series(0, {N} - 1) i
), h AS (
	SELECT i, r,
		i % 25 - ('{0,1,4,6,10,11,13,18,20,21}'::int[])[r % 10 + 1] AS p,
		abs(hashint8extended(r, 1)) % 20 AS rp,
		abs(hashint8extended(r, 2)) % 100 AS t,
		abs(hashint8extended(r, 3)) % 15 AS k0,
		abs(hashint8extended(i, 7)) % 1000 AS s,
		abs(hashint8extended(i, 8)) AS hv
	FROM g
), k AS (
	SELECT i, r, hv, 'acme/repo-' || lpad(rp::text, 2, '0') AS repo,
		'svc-' || CASE WHEN (k0 + p) % 15 < 10 THEN (k0 + p) % 15 ELSE ((k0 + p) % 15 - 10) * 2 END AS svc,
		CASE WHEN (k0 + p) % 15 < 10 THEN 'production' ELSE 'staging' END AS env,
		CASE (rp + CASE WHEN (k0 + p) % 15 < 10 THEN (k0 + p) % 15 ELSE ((k0 + p) % 15 - 10) * 2 END) % 10
			WHEN 0 THEN 'ecs' WHEN 1 THEN 'ecs' WHEN 2 THEN 'docker' WHEN 3 THEN 'docker' WHEN 4 THEN 'docker'
			ELSE 'swarm' END AS platform,
		CASE WHEN i >= {N} - 5 THEN 'queued' WHEN s < 880 THEN 'succeeded' WHEN s < 940 THEN 'failed'
			WHEN s < 960 THEN 'cancelled' WHEN s < 990 THEN 'superseded' ELSE 'rolled_back' END AS status,
		t < 85 OR t >= 96 AS built,
		md5(r::text) || substr(md5('s' || r), 1, 8) AS sha,
		timestamptz '2024-01-01 00:00:00+00' + (r::float8 / {R}) * interval '730 days' + p * interval '1 second' AS at
	FROM h
), s1 AS (
	SELECT *, replace(repo, 'acme/', '') || '-' || svc || '-' || env AS name,
		status = 'failed' AND built AND hv % 3 = 0 AS failed_build,
		CASE WHEN status IN ('queued', 'superseded') THEN NULL ELSE at + (2 + hv % 20) * interval '1 second' END AS claimed
	FROM k
), s2 AS (
	SELECT *,
		CASE WHEN built THEN claimed END AS building,
		CASE WHEN built AND NOT failed_build THEN claimed + (30 + hv % 120) * interval '1 second' END AS pushing
	FROM s1
), s3 AS (
	SELECT *,
		CASE WHEN claimed IS NULL OR failed_build THEN NULL WHEN built THEN pushing + (5 + hv / 7 % 25) * interval '1 second'
			ELSE claimed + interval '1 second' END AS deploying
	FROM s2
)
INSERT INTO deployments (id, run_id, repo, service, environment, platform, spec, commit_sha, status, error,
	image_ref, image_digest, attempt, max_attempts, run_after, cancel_requested, cancelled_by, cancel_reason,
	created_at, claimed_at, building_at, pushing_at, deploying_at, finished_at, updated_at, target_touched,
	target_key, task_definition_arn, previous_task_definition_arn)
SELECT i + 1, r + 1, repo, svc, env, platform,
	jsonb_build_object(
		'build', jsonb_build_object('image', 'registry.example.com/' || repo || '/' || svc,
			'dockerfile', 'services/' || svc || '/Dockerfile', 'context', '.'),
		'destination', jsonb_build_object('service', svc, 'environment', env, 'platform', platform) ||
			CASE platform WHEN 'swarm' THEN jsonb_build_object('swarm', jsonb_build_object('service', name))
				WHEN 'docker' THEN jsonb_build_object('docker', jsonb_build_object('container', name, 'network', 'host'))
				ELSE jsonb_build_object('ecs', jsonb_build_object('cluster', env, 'service', name, 'container', svc)) END) ||
		CASE WHEN built THEN '{}'::jsonb ELSE jsonb_build_object('rollback_of', greatest(i - 40, 1)) END,
	sha, status,
	CASE WHEN status <> 'failed' THEN '' WHEN failed_build THEN 'build: step 7/12 RUN go test ./...: exit status 1'
		ELSE 'rollout: the service did not become healthy within 2m0s' END,
	CASE WHEN claimed IS NULL OR failed_build THEN '' ELSE 'registry.example.com/' || repo || '/' || svc || ':' || sha END,
	CASE WHEN claimed IS NULL OR failed_build THEN '' ELSE 'sha256:' || md5(i::text) || md5('d' || i) END,
	CASE WHEN claimed IS NULL THEN 0 ELSE 1 END, 3, at, status = 'cancelled',
	CASE WHEN status = 'cancelled' THEN 'ops-' || (hv % 5) ELSE '' END,
	CASE WHEN status = 'cancelled' THEN 'wrong commit, deploying the fix instead' ELSE '' END,
	at, claimed, building, pushing, deploying,
	CASE WHEN status = 'queued' THEN NULL WHEN status = 'superseded' THEN at + (60 + hv % 600) * interval '1 second'
		ELSE coalesce(deploying, pushing, building, claimed) + (10 + hv / 11 % 50) * interval '1 second' END,
	coalesce(claimed, at), deploying IS NOT NULL,
	platform || ':' || CASE platform WHEN 'ecs' THEN env || '/' || name ELSE name END,
	CASE WHEN platform = 'ecs' AND deploying IS NOT NULL
		THEN 'arn:aws:ecs:eu-west-1:123456789012:task-definition/' || name || ':' || (i % 5000 + 1) ELSE '' END,
	CASE WHEN platform = 'ecs' AND deploying IS NOT NULL
		THEN 'arn:aws:ecs:eu-west-1:123456789012:task-definition/' || name || ':' || (i % 5000) ELSE '' END
FROM s3;

INSERT INTO deployment_logs (deployment_id, attempt, stream, line, created_at)
SELECT d, 1,
	CASE WHEN n = 1 OR n = c.c THEN 'system' WHEN n % 7 = 3 THEN 'stderr' ELSE 'stdout' END,
	CASE n % 4
		WHEN 0 THEN 'Step ' || n || '/12 : RUN go build -trimpath -ldflags=-s -o /out/app ./cmd/app'
		WHEN 1 THEN ' ---> Using cache ' || substr(md5(d::text || ':' || n), 1, 12)
		WHEN 2 THEN '#' || n || ' [builder 4/9] COPY go.mod go.sum ./  0.' || n % 10 || 's done'
		ELSE 'sha256:' || md5(n::text) || ': pushed ' || (n * 37 % 900 + 100) || ' kB' END,
	timestamptz '2024-01-01 00:00:00+00' + (d::float8 / {N}) * interval '730 days' + n * interval '100 milliseconds'
FROM generate_series(1, {N} - 5) d
CROSS JOIN LATERAL (SELECT CASE WHEN d % 1000 = 500 THEN 2500 ELSE 5 + abs(hashint8extended(d, 9)) % 6 END AS c) c
CROSS JOIN LATERAL generate_series(1, c.c) n;

SELECT setval(pg_get_serial_sequence('runs', 'id'), (SELECT max(id) FROM runs));
SELECT setval(pg_get_serial_sequence('deployments', 'id'), (SELECT max(id) FROM deployments));
`

func benchSeed(ctx context.Context, dbURL string, n int64) error {
	seedStart := time.Now()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	// The rows are consistent by construction: replica mode skips the per-row foreign key checks.
	for _, s := range []string{"SET session_replication_role = replica", "SET synchronous_commit = off",
		"SET work_mem = '256MB'", "SET maintenance_work_mem = '512MB'"} {
		if _, err := c.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	slots := (n + 24) / 25 * 10
	sql := strings.NewReplacer("{N}", strconv.FormatInt(n, 10), "{R}", strconv.FormatInt(slots, 10)).Replace(benchSeedSQL)
	for i, stmt := range strings.Split(sql, ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		start := time.Now()
		tag, err := c.Exec(ctx, stmt)
		if err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
		benchLogf("seed statement %d: %s in %s", i+1, tag, time.Since(start).Round(time.Millisecond))
	}
	start := time.Now()
	if _, err := c.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	benchLogf("VACUUM ANALYZE in %s", time.Since(start).Round(time.Millisecond))
	var runs, deps, lines int64
	if err := c.QueryRow(ctx, `SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM deployments),
		(SELECT count(*) FROM deployment_logs)`).Scan(&runs, &deps, &lines); err != nil {
		return err
	}
	if deps != n {
		return fmt.Errorf("%d deployments seeded, want %d", deps, n)
	}
	benchLogf("seeded %d runs, %d deployments, %d log lines", runs, deps, lines)
	if _, err := c.Exec(ctx, `CREATE TABLE bench_seed (scale bigint PRIMARY KEY, seconds float8 NOT NULL,
		seeded_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	_, err = c.Exec(ctx, `INSERT INTO bench_seed (scale, seconds) VALUES ($1, $2)`, n, time.Since(seedStart).Seconds())
	return err
}

// captureTracer records the statements the pool runs while on: the plans are of the very queries
// the pages ran, with their arguments.
type captureTracer struct {
	on atomic.Bool
	mu sync.Mutex
	qs []capturedQuery
}

type capturedQuery struct {
	sql  string
	args []any
}

func (c *captureTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if c.on.Load() {
		c.mu.Lock()
		c.qs = append(c.qs, capturedQuery{sql: d.SQL, args: slices.Clone(d.Args)})
		c.mu.Unlock()
	}
	return ctx
}

func (c *captureTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// timedWriter is the response of one request: when the first byte (or the first byte of the first
// write holding marker) was written, and the body unless discard is set.
type timedWriter struct {
	h       http.Header
	code    int
	start   time.Time
	marker  []byte
	first   time.Duration
	onFirst func()
	discard bool
	body    bytes.Buffer
}

func (w *timedWriter) Header() http.Header { return w.h }
func (w *timedWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *timedWriter) Flush() {}
func (w *timedWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	if w.first == 0 && (w.marker == nil || bytes.HasPrefix(p, w.marker) || bytes.Contains(p, append([]byte("\n"), w.marker...))) {
		w.first = time.Since(w.start)
		if w.onFirst != nil {
			w.onFirst()
		}
	}
	if !w.discard {
		w.body.Write(p)
	}
	return len(p), nil
}

type benchPage struct {
	name, path string
	// firstByte measures the time to the first write holding marker ("" for any), then ends the
	// request, instead of the time to the whole page.
	firstByte bool
	marker    string
}

func (e *benchEnv) pages() []benchPage {
	deep := e.n / 10 // ~90% down the history
	typical, long := e.typicalID, e.longID
	return []benchPage{
		{name: "services", path: "/"},
		{name: "history", path: "/deployments"},
		{name: "history-deep", path: fmt.Sprintf("/deployments?before=%d", deep)},
		{name: "history-repo-service", path: "/deployments?repo=acme/repo-07&service=svc-3"},
		{name: "history-repo-service-deep", path: fmt.Sprintf("/deployments?repo=acme/repo-07&service=svc-3&before=%d", deep)},
		{name: "history-repo-service-env", path: "/deployments?repo=acme/repo-07&service=svc-4&environment=staging"},
		{name: "history-status-failed", path: "/deployments?status=failed"},
		{name: "history-status-failed-deep", path: fmt.Sprintf("/deployments?status=failed&before=%d", deep)},
		{name: "history-repo-status-cancelled", path: "/deployments?repo=acme/repo-03&status=cancelled"},
		{name: "history-branch", path: "/deployments?branch=feature/f-17"},
		{name: "history-branch-deep", path: fmt.Sprintf("/deployments?branch=feature/f-17&before=%d", deep)},
		{name: "history-branch-main-deep", path: fmt.Sprintf("/deployments?branch=main&before=%d", deep)},
		{name: "history-trigger-rollback", path: "/deployments?trigger=rollback"},
		// Rare combinations: no index leads with both, so a scan in id order filters many rows.
		{name: "history-repo-service-status-rolled_back", path: "/deployments?repo=acme/repo-03&service=svc-3&status=rolled_back"},
		{name: "history-status-rolled_back-trigger-manual", path: "/deployments?status=rolled_back&trigger=manual"},
		{name: "history-commit", path: "/deployments?commit=c4ca4238"}, // md5("1"): run 1's commit
		{name: "deployment", path: fmt.Sprintf("/deployments/%d", typical)},
		{name: "deployment-long-log", path: fmt.Sprintf("/deployments/%d", long)},
		{name: "log-stream-first-line", path: fmt.Sprintf("/deployments/%d/logs/stream", typical), firstByte: true, marker: "id: "},
		{name: "log-stream-first-line-long-log", path: fmt.Sprintf("/deployments/%d/logs/stream", long), firstByte: true, marker: "id: "},
		{name: "log-txt-first-byte", path: fmt.Sprintf("/deployments/%d/log.txt", typical), firstByte: true},
		{name: "log-txt-first-byte-long-log", path: fmt.Sprintf("/deployments/%d/log.txt", long), firstByte: true},
	}
}

// serve runs one request of p through the router and returns the server time: to the end of the
// handler, or to the first byte asked for.
func (e *benchEnv) serve(b *testing.B, p benchPage) (time.Duration, *timedWriter) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, p.path, nil)
	req.AddCookie(e.cookie)
	w := &timedWriter{h: http.Header{}, discard: p.firstByte}
	if p.firstByte {
		w.onFirst = cancel // the rest of the log is not measured
		if p.marker != "" {
			w.marker = []byte(p.marker)
		}
	}
	w.start = time.Now()
	e.router.ServeHTTP(w, req)
	total := time.Since(w.start)
	if w.code != http.StatusOK {
		b.Fatalf("GET %s: %d %s", p.path, w.code, w.body.String())
	}
	if p.firstByte {
		if w.first == 0 {
			b.Fatalf("GET %s: no %q written", p.path, p.marker)
		}
		return w.first, w
	}
	return total, w
}

func BenchmarkDashboardPages(b *testing.B) {
	e := setupBench(b)
	explained := map[string]bool{}
	for _, p := range e.pages() {
		b.Run(p.name, func(b *testing.B) {
			if !explained[p.name] {
				explained[p.name] = true
				e.explain(b, p)
			}
			durs := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				d, _ := e.serve(b, p)
				durs = append(durs, d)
			}
			b.StopTimer()
			slices.Sort(durs)
			b.ReportMetric(ms(percentile(durs, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(durs, 0.95)), "p95-ms")
			b.ReportMetric(float64(e.n), "deployments")
		})
	}
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var (
	removed  = regexp.MustCompile(`Rows Removed by Filter: ([0-9]+)`)
	scanNode = regexp.MustCompile(`(Seq Scan on \S+|Index Only Scan(?: Backward)? using \S+|Index Scan(?: Backward)? using \S+|Bitmap Index Scan on \S+)`)
	execTime = regexp.MustCompile(`Execution Time: ([0-9.]+) ms`)
)

// explain serves p once while capturing its statements, runs EXPLAIN (ANALYZE, BUFFERS) on each in
// a transaction rolled back (a session touch is an UPDATE), appends the plans to the explain file
// and logs one line per statement: its scans and whether any reads a whole table.
func (e *benchEnv) explain(b *testing.B, p benchPage) {
	b.Helper()
	e.tracer.mu.Lock()
	e.tracer.qs = nil
	e.tracer.mu.Unlock()
	e.tracer.on.Store(true)
	e.serve(b, p)
	e.tracer.on.Store(false)
	e.tracer.mu.Lock()
	qs := e.tracer.qs
	e.tracer.mu.Unlock()

	ctx := context.Background()
	var out strings.Builder
	fmt.Fprintf(&out, "==== %s: GET %s (%d deployments)\n", p.name, p.path, e.n)
	for i, q := range qs {
		if strings.HasPrefix(strings.TrimSpace(q.sql), "begin") || strings.HasPrefix(strings.TrimSpace(q.sql), "commit") {
			continue
		}
		plan, err := e.explainOne(ctx, q)
		if err != nil {
			b.Logf("%s: EXPLAIN of statement %d: %v", p.name, i+1, err)
			continue
		}
		generic, gerr := e.explainGeneric(ctx, q)
		if gerr != nil {
			generic = "(no generic plan: " + gerr.Error() + ")"
		}
		fmt.Fprintf(&out, "-- statement %d: %s\n-- args: %v\n-- custom plan (the first executions of a prepared statement):\n%s\n"+
			"-- generic plan (plan_cache_mode = force_generic_plan):\n%s\n\n",
			i+1, strings.Join(strings.Fields(q.sql), " "), q.args, plan, generic)
		verdict, scans, exec := planSummary(plan)
		gverdict, _, gexec := planSummary(generic)
		b.Logf("EXPLAIN %s #%d [custom: %s, %s; generic: %s, %s] %.60s… scans: %s", p.name, i+1, verdict, exec,
			gverdict, gexec, strings.Join(strings.Fields(q.sql), " "), strings.Join(scans, "; "))
	}
	path := benchExplainPath(e.n)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Logf("writing plans: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.WriteString(out.String()); err != nil {
		b.Logf("writing plans: %v", err)
	}
}

// planSummary says whether a plan reads any table whole and how many rows its scans read to throw
// away (an index walked in the wrong order), which scans it makes and how long it ran.
func planSummary(plan string) (verdict string, scans []string, exec string) {
	scans = slices.Compact(scanNode.FindAllString(plan, -1))
	verdict = "index"
	for _, s := range scans {
		if strings.HasPrefix(s, "Seq Scan") {
			verdict = "SEQ SCAN"
		}
	}
	var filtered int64
	for _, m := range removed.FindAllStringSubmatch(plan, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		filtered += n
	}
	if filtered > 0 {
		verdict += fmt.Sprintf(" (%d rows filtered out)", filtered)
	}
	if m := execTime.FindStringSubmatch(plan); m != nil {
		exec = m[1] + " ms"
	}
	return verdict, scans, exec
}

// explainGeneric explains q as a prepared statement's generic plan, the one PostgreSQL may switch
// to after five executions, on a connection of its own (DEALLOCATE ALL would drop the pool's
// statements). The arguments are written as literals: the dashboard's are numbers and text.
func (e *benchEnv) explainGeneric(ctx context.Context, q capturedQuery) (string, error) {
	e.genericMu.Lock()
	defer e.genericMu.Unlock()
	if e.generic == nil {
		cfg := e.st.Pool().Config().ConnConfig.Copy()
		cfg.Tracer = nil
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			return "", err
		}
		e.generic = c
	}
	lits := make([]string, len(q.args))
	for i, a := range q.args {
		switch v := a.(type) {
		case int, int32, int64:
			lits[i] = fmt.Sprint(v)
		case string:
			lits[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case time.Time:
			lits[i] = "'" + v.Format(time.RFC3339Nano) + "'"
		default:
			return "", fmt.Errorf("argument %d is a %T", i+1, a)
		}
	}
	c := e.generic
	for _, s := range []string{"DEALLOCATE ALL", "PREPARE bench_generic AS " + q.sql} {
		if _, err := c.Exec(ctx, s); err != nil {
			return "", err
		}
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // EXPLAIN ANALYZE of a write must not keep it
	if _, err := tx.Exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
		return "", err
	}
	stmt := "EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_generic"
	if len(lits) > 0 {
		stmt += "(" + strings.Join(lits, ", ") + ")"
	}
	rows, err := tx.Query(ctx, stmt, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

func (e *benchEnv) explainOne(ctx context.Context, q capturedQuery) (string, error) {
	tx, err := e.st.Pool().Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // EXPLAIN ANALYZE of a write must not keep it
	rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+q.sql, q.args...)
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

var explainStart sync.Once

// benchExplainPath is the plans' file, emptied by the first EXPLAIN of the process.
func benchExplainPath(n int64) string {
	dir := os.Getenv("SLIPWAY_BENCH_OUT")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("dashboard-explain-%d.txt", n))
	explainStart.Do(func() {
		_ = os.MkdirAll(dir, 0o755)
		_ = os.Remove(path)
		fmt.Fprintf(os.Stderr, "dashboard benchmark: plans in %s\n", path)
	})
	return path
}

// vmRSS is this process's resident set size in bytes, from /proc/self/status.
func vmRSS() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// BenchmarkDashboardLogTailRSS opens 10 live tails (real HTTP, server-sent events) on 4 running
// deployments, each with a backlog of SLIPWAY_BENCH_TAIL_BACKLOG lines (default 50,000, 200 bytes
// each) the tails read from the start, while a writer appends 10 lines every 20 ms to each for
// SLIPWAY_BENCH_TAIL_SECONDS (default 10), then finishes them. It reports the process's RSS
// before and at its peak, and fails if any tail lost, doubled or reordered a line. b.N is not
// used: run it with -benchtime 1x, or it measures twice.
func BenchmarkDashboardLogTailRSS(b *testing.B) {
	e := setupBench(b)
	backlog := benchEnvInt("SLIPWAY_BENCH_TAIL_BACKLOG", 50_000)
	live := time.Duration(benchEnvInt("SLIPWAY_BENCH_TAIL_SECONDS", 10)) * time.Second
	const deployments, clients, owner = 4, 10, "bench-rss"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := e.st.Pool()

	// The running deployments live in a repository of their own, removed again at the end (and
	// at the start, should a killed run have left them).
	cleanup := func() {
		if _, err := pool.Exec(context.Background(), `
			WITH d AS (DELETE FROM deployments WHERE repo = 'bench/live' RETURNING run_id)
			DELETE FROM runs WHERE id IN (SELECT run_id FROM d) OR repo = 'bench/live'`); err != nil {
			b.Fatal(err)
		}
	}
	cleanup()
	defer cleanup()
	var ids []int64
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var runID int64
		if err := tx.QueryRow(ctx, `INSERT INTO runs (trigger, repo, ref, branch, after_sha, pusher, message, status)
			VALUES ('push', 'bench/live', 'refs/heads/main', 'main', repeat('a', 40), 'dev-01', 'live tail', 'planned')
			RETURNING id`).Scan(&runID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `INSERT INTO deployments (run_id, repo, service, environment, commit_sha, status,
				attempt, lease_owner, lease_expires_at, claimed_at, building_at, target_key)
			SELECT $1, 'bench/live', 'svc-' || i, 'production', repeat('a', 40), 'building', 1, $2,
				now() + interval '1 hour', now(), now(), 'swarm:bench-live-' || i
			FROM generate_series(1, $3) i RETURNING id`, runID, owner, deployments)
		if err != nil {
			return err
		}
		if ids, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO deployment_logs (deployment_id, attempt, stream, line)
			SELECT d, 1, 'stdout', 'backlog ' || n || ' ' || repeat('x', 180)
			FROM unnest($1::bigint[]) d CROSS JOIN generate_series(1, $2) n`, ids, backlog)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}

	listening := make(chan error, 1)
	go func() { listening <- e.dash.Run(ctx) }()
	defer func() { cancel(); <-listening }()
	select {
	case <-web.ListenReady(e.dash):
	case err := <-listening:
		b.Fatalf("log listener: %v", err)
	}
	srv := httptest.NewServer(e.router)
	defer srv.Close()

	runtime.GC()
	debug.FreeOSMemory()
	before, err := vmRSS()
	if err != nil {
		b.Fatal(err)
	}
	var peak atomic.Int64
	peak.Store(before)
	sampleDone := make(chan struct{})
	sampleCtx, stopSampling := context.WithCancel(ctx)
	go func() {
		defer close(sampleDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampleCtx.Done():
				return
			case <-t.C:
				if r, err := vmRSS(); err == nil && r > peak.Load() {
					peak.Store(r)
				}
			}
		}
	}()

	b.ResetTimer()
	start := time.Now()
	type result struct {
		dep   int64
		lines int64
		err   error
	}
	results := make(chan result, clients)
	for c := range clients {
		dep := ids[c%deployments]
		go func() {
			n, err := tailUntilEnd(ctx, srv.URL, e.cookie, dep)
			results <- result{dep: dep, lines: n, err: err}
		}()
	}
	claims := make([]store.Claim, len(ids))
	for i, id := range ids {
		claims[i] = store.Claim{Kind: store.KindDeployment, ID: id, Owner: owner, Attempt: 1}
	}
	appended := 0
	tick := time.NewTicker(20 * time.Millisecond)
	deadline := time.After(live)
appending:
	for {
		select {
		case <-deadline:
			break appending
		case <-tick.C:
			for _, c := range claims {
				lines := make([]store.LogLine, 10)
				for i := range lines {
					lines[i] = store.LogLine{Stream: "stdout", Line: fmt.Sprintf("live %d %s", appended+i, strings.Repeat("y", 180)), CreatedAt: time.Now()}
				}
				if err := e.st.DeploymentLogsAppend(ctx, c, lines); err != nil {
					b.Fatal(err)
				}
			}
			appended += 10
		}
	}
	tick.Stop()
	for _, c := range claims {
		if err := e.st.QueueFinish(ctx, c, "succeeded", ""); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(backlog + appended)
	var delivered int64
	for range clients {
		select {
		case r := <-results:
			if r.err != nil {
				b.Fatalf("tail of deployment %d: %v", r.dep, r.err)
			}
			if r.lines != want {
				b.Errorf("tail of deployment %d got %d lines, want %d", r.dep, r.lines, want)
			}
			delivered += r.lines
		case <-time.After(5 * time.Minute): // a hang guard, not a timing
			b.Fatal("a tail did not end within 5 minutes of its deployment finishing")
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	stopSampling()
	<-sampleDone
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b.ReportMetric(float64(before)/(1<<20), "rss-before-MB")
	b.ReportMetric(float64(peak.Load())/(1<<20), "rss-peak-MB")
	b.ReportMetric(float64(m.HeapSys)/(1<<20), "heap-sys-MB")
	b.ReportMetric(float64(delivered)/elapsed.Seconds(), "lines/s")
	b.Logf("%d tails on %d deployments, %d backlog + %d live lines each (%.0f MB streamed in all): RSS %.1f MB before, %.1f MB peak",
		clients, deployments, backlog, appended, float64(delivered)*200/(1<<20), float64(before)/(1<<20), float64(peak.Load())/(1<<20))
}

// tailUntilEnd reads a deployment's live log from its start until "event: end", checking the ids
// only go up, and returns how many lines it got.
func tailUntilEnd(ctx context.Context, base string, cookie *http.Cookie, dep int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/deployments/%d/logs/stream", base, dep), nil)
	if err != nil {
		return 0, err
	}
	req.AddCookie(cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var n, last int64
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id, err := strconv.ParseInt(line[4:], 10, 64)
			if err != nil {
				return n, err
			}
			if id <= last {
				return n, fmt.Errorf("line id %d after %d", id, last)
			}
			last = id
			n++
		case line == "event: end":
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	return n, errors.New("stream closed before its end")
}
