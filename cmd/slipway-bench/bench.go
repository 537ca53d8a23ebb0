package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// Targets from the issue. They are reported, never enforced.
const (
	targetRatio      = 0.8
	targetHalfRateMs = 20.0
)

// phaseGap lets backends publish their statistics (PostgreSQL 15 flushes them within a second of
// going idle) before a phase's end counters are read.
const phaseGap = 1500 * time.Millisecond

// runner holds what every phase uses.
type runner struct {
	cfg       options
	gen       *loadGen
	probe     *probe
	dbURL     string
	script    string // pgbench: the plain insert
	notify    string // pgbench: the insert with a NOTIFY
	serverPID int
	cpus      int
}

// bench runs the whole measurement: server, levels, half rate, profile. Everything it starts it
// stops, and the database it creates it drops, whatever happens.
func bench(ctx context.Context, cfg options, logw io.Writer) (res *results, err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "slipway-bench: "+format+"\n", args...) }
	body, err := os.ReadFile(cfg.payload)
	if err != nil {
		return nil, fmt.Errorf("failed to read payload: %w", err)
	}
	if body, err = unordered(body); err != nil {
		return nil, fmt.Errorf("reading payload %s: %w", cfg.payload, err)
	}
	tmp, err := os.MkdirTemp("", "slipway-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res = &results{StartedAt: time.Now().UTC(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(),
		Levels: cfg.levels, WarmupS: cfg.warmup.Seconds(), DurationS: cfg.duration.Seconds(),
		Pgbench: pgbenchVersion(cfg.pgbench)}
	r := &runner{cfg: cfg, cpus: res.CPUs, dbURL: cfg.dbURL}

	baseURL, secret := cfg.url, cfg.secret
	if cfg.url == "" {
		bin := cfg.serverBin
		if bin == "" {
			logf("building ./cmd/slipway")
			if bin, err = buildServer(ctx, cfg.src, tmp); err != nil {
				return nil, err
			}
		}
		// The database is dropped after the server has stopped (defers run last in, first out).
		if r.dbURL, err = createDatabase(ctx, cfg.dbURL, cfg.dbName); err != nil {
			return nil, err
		}
		defer func() {
			err = errors.Join(err, dropDatabase(context.WithoutCancel(ctx), cfg.dbURL, cfg.dbName))
		}()
		srv, err := startServer(ctx, bin, r.dbURL, cfg.repo, tmp)
		if err != nil {
			return nil, err
		}
		defer func() {
			if serr := srv.stop(); serr != nil {
				err = errors.Join(err, fmt.Errorf("server: %w; its log:\n%s", serr, srv.logTail(20)))
			}
			res.ServerLogLines = srv.logLines()
			if res.ServerLogLines > 0 {
				logf("the server logged %d lines at warn or above; the last ones:\n%s", res.ServerLogLines, srv.logTail(3))
			}
		}()
		baseURL, secret, r.serverPID = srv.url, srv.secret, srv.pid()
		res.Server = serverInfo{URL: srv.url, Started: true, Source: cmp.Or(cfg.serverSrc, cfg.src),
			Workers: 1, PoolConns: 1*2 + 8}
		logf("slipway serve (pid %d) ready at %s on database %s", r.serverPID, srv.url, cfg.dbName)
	} else {
		res.Server = serverInfo{URL: cfg.url}
	}

	if r.probe, err = openProbe(ctx, r.dbURL, cfg.url == ""); err != nil {
		return nil, err
	}
	defer r.probe.close(context.WithoutCancel(ctx))
	res.Statements = r.probe.statements
	if err := r.probe.createBenchTable(ctx); err != nil {
		return nil, err
	}
	defer r.probe.dropBenchTable(context.WithoutCancel(ctx)) //nolint:errcheck // the database goes too
	r.script, r.notify = filepath.Join(tmp, "insert.sql"), filepath.Join(tmp, "insert-notify.sql")
	if err := os.WriteFile(r.script, []byte(benchInsertScript), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(r.notify, []byte(benchNotifyScript), 0o644); err != nil {
		return nil, err
	}
	maxConc := cfg.openConns
	for _, c := range cfg.levels {
		maxConc = max(maxConc, c)
	}
	r.gen = newLoadGen(baseURL, secret, body, maxConc)
	defer r.gen.close()

	for _, c := range cfg.levels {
		logf("concurrency %d: webhook ingest (%s warm-up, %s measured)", c, cfg.warmup, cfg.duration)
		in, err := r.ingest(ctx, c)
		if err != nil {
			return res, err
		}
		logf("concurrency %d: %.0f req/s, %s, %d errors", c, in.RPS, in.Latency, in.Errors)
		logf("concurrency %d: pgbench", c)
		pg, err := r.pgbench(ctx, c, r.script)
		if err != nil {
			return res, err
		}
		logf("concurrency %d: %.0f tps", c, pg.TPS)
		lvl := level{Concurrency: c, Ingest: in, Pgbench: pg}
		if cfg.notify {
			logf("concurrency %d: pgbench, insert with NOTIFY", c)
			pn, err := r.pgbench(ctx, c, r.notify)
			if err != nil {
				return res, err
			}
			logf("concurrency %d: %.0f tps", c, pn.TPS)
			lvl.PgbenchNotify = &pn
		}
		if pg.TPS > 0 {
			lvl.Ratio = in.RPS / pg.TPS
		}
		res.Results = append(res.Results, lvl)
	}
	res.summarize()

	if cfg.halfRate > 0 && res.MaxIngestRPS > 0 {
		rate := res.MaxIngestRPS / 2
		logf("open loop at %.0f req/s for %s", rate, cfg.halfRate)
		if err := r.probe.settle(ctx); err != nil {
			return res, err
		}
		hr := r.gen.openLoop(ctx, rate, cfg.halfRate, cfg.openConns)
		hr.TargetP99Ms = targetHalfRateMs
		hr.Met = hr.Errors == 0 && hr.Latency.P99 <= targetHalfRateMs
		res.HalfRate = &hr
		if _, _, err := r.probe.runs(ctx, true); err != nil {
			return res, err
		}
	}
	if cfg.profile != "" && len(res.Results) > 0 {
		c := res.bestLevel().Concurrency
		logf("in-process handler at concurrency %d for %s, CPU profile to %s", c, cfg.duration, cfg.profile)
		pr, err := profileHandler(ctx, r.dbURL, cfg.repo, body, c, cfg.duration, cfg.profile)
		if err != nil {
			return res, err
		}
		res.Profile = &profileResult{Path: cfg.profile, Concurrency: c, ingestResult: pr}
	}
	return res, ctx.Err()
}

// ingest measures the server at conc, with what the database and the machine did meanwhile.
func (r *runner) ingest(ctx context.Context, conc int) (ingestPhase, error) {
	if err := r.probe.settle(ctx); err != nil {
		return ingestPhase{}, err
	}
	_, attemptedBefore, err := r.probe.runs(ctx, false)
	if err != nil {
		return ingestPhase{}, err
	}
	from := time.Now().Add(r.cfg.warmup)
	to := from.Add(r.cfg.duration)
	loaded := make(chan ingestResult, 1)
	go func() { loaded <- r.gen.closedLoop(ctx, conc, from, to) }()
	sleepUntil(ctx, from)
	w := r.watch(ctx)
	sleepUntil(ctx, to)
	cpu1, waits := w.stop()
	res := <-loaded
	diag, err := r.diagnose(ctx, w, cpu1, waits, w.generatorCPU(cpu1), res.Requests)
	if err != nil {
		return ingestPhase{}, err
	}
	p := ingestPhase{ingestResult: res, Diag: diag}
	queued, attempted, err := r.probe.runs(ctx, true)
	if err != nil {
		return ingestPhase{}, err
	}
	p.RunsAttempted, p.RunsLeftQueued = attempted-attemptedBefore, queued
	return p, nil
}

// pgbench measures the database alone at conc, running script.
func (r *runner) pgbench(ctx context.Context, conc int, script string) (pgbenchPhase, error) {
	if err := r.probe.settle(ctx); err != nil {
		return pgbenchPhase{}, err
	}
	w := r.watch(ctx)
	run, err := runPgbench(ctx, r.cfg.pgbench, r.dbURL, script, conc, r.cfg.duration)
	cpu1, waits := w.stop()
	if err != nil {
		return pgbenchPhase{}, err
	}
	// pgbench's backends exit after it; only once the postmaster has reaped them is their CPU time
	// in its children's times.
	if err := r.probe.waitBackendsGone(ctx, "pgbench"); err != nil {
		return pgbenchPhase{}, err
	}
	cpu1.postgres = readCPU(0, r.probe.postmaster).postgres
	diag, err := r.diagnose(ctx, w, cpu1, waits, run.cpu, run.Transactions)
	if err != nil {
		return pgbenchPhase{}, err
	}
	return pgbenchPhase{pgbenchRun: run, Diag: diag}, nil
}

// watch starts watching a phase: CPU and database counters now, wait events until stop.
type watch struct {
	r        *runner
	cpu0     cpuTimes
	counters counters
	halt     chan struct{}
	waits    chan waitProfile
	err      error
}

func (r *runner) watch(ctx context.Context) *watch {
	w := &watch{r: r, halt: make(chan struct{}), waits: make(chan waitProfile, 1)}
	w.counters, w.err = r.probe.counters(ctx)
	w.cpu0 = readCPU(r.serverPID, r.probe.postmaster)
	go func() { w.waits <- r.probe.sampleWaits(ctx, w.halt, 20*time.Millisecond) }()
	return w
}

func (w *watch) stop() (cpuTimes, waitProfile) {
	cpu1 := readCPU(w.r.serverPID, w.r.probe.postmaster)
	close(w.halt)
	return cpu1, <-w.waits
}

// generatorCPU is this process's CPU over the watch: the load generator's.
func (w *watch) generatorCPU(cpu1 cpuTimes) time.Duration { return cpu1.self - w.cpu0.self }

func (r *runner) diagnose(ctx context.Context, w *watch, cpu1 cpuTimes, waits waitProfile, client time.Duration, ops int) (dbUse, error) {
	if w.err != nil {
		return dbUse{}, w.err
	}
	sleepUntil(ctx, time.Now().Add(phaseGap))
	c1, err := r.probe.counters(ctx)
	if err != nil {
		return dbUse{}, err
	}
	stmts, err := r.probe.topStatements(ctx, 5)
	if err != nil {
		return dbUse{}, err
	}
	d := dbUse{CPU: cpuBetween(w.cpu0, cpu1, client, ops, r.cpus), Waits: waits, Statements: stmts}
	if ops > 0 {
		n := float64(ops)
		d.CommitsPerOp = float64(c1.commits-w.counters.commits) / n
		d.WALSyncsPerOp = float64(c1.walSyncs-w.counters.walSyncs) / n
		d.WALBytesPerOp = (c1.walBytes - w.counters.walBytes) / n
	}
	return d, nil
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

func pgbenchVersion(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

// unordered drops repository.pushed_at from a push payload. The bench sends one body again and
// again under fresh delivery ids: with pushed_at, every copy after the first is a replay the
// server records as stale and does not queue, which is not the load being measured.
func unordered(body []byte) ([]byte, error) {
	var payload map[string]any
	if err := json.Unmarshal(body, &payload); err != nil {
		return nil, err
	}
	if repo, ok := payload["repository"].(map[string]any); ok {
		delete(repo, "pushed_at")
	}
	return json.Marshal(payload)
}
