package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// results is everything one run measured; it is also the JSON written by -out.
type results struct {
	StartedAt      time.Time       `json:"started_at"`
	CPUs           int             `json:"cpus"`
	GoVersion      string          `json:"go_version"`
	Pgbench        string          `json:"pgbench_version"`
	Server         serverInfo      `json:"server"`
	Levels         []int           `json:"concurrency_levels"`
	WarmupS        float64         `json:"warmup_s"`
	DurationS      float64         `json:"duration_s"`
	Statements     bool            `json:"pg_stat_statements"`
	Results        []level         `json:"levels"`
	MaxIngestRPS   float64         `json:"max_ingest_rps"`
	MaxPgbenchTPS  float64         `json:"max_pgbench_tps"`
	Ratio          float64         `json:"ratio"` // best ingest over best pgbench
	TargetRatio    float64         `json:"target_ratio"`
	RatioMet       bool            `json:"ratio_met"`
	HalfRate       *openLoopResult `json:"half_rate,omitempty"`
	Profile        *profileResult  `json:"profile,omitempty"`
	ServerLogLines int             `json:"server_log_lines"`
}

type serverInfo struct {
	URL       string `json:"url"`
	Started   bool   `json:"started_by_bench"`
	Source    string `json:"source,omitempty"` // what the server was built from
	Workers   int    `json:"workers,omitempty"`
	PoolConns int    `json:"pool_conns,omitempty"`
}

type level struct {
	Concurrency int          `json:"concurrency"`
	Ingest      ingestPhase  `json:"ingest"`
	Pgbench     pgbenchPhase `json:"pgbench"`
	Ratio       float64      `json:"ratio"` // ingest over pgbench
	// PgbenchNotify is pgbench with a NOTIFY in each transaction: not the limit, an explanation.
	PgbenchNotify *pgbenchPhase `json:"pgbench_notify,omitempty"`
}

type ingestResult struct {
	Requests int            `json:"requests"`
	RPS      float64        `json:"rps"`
	Latency  latencyStats   `json:"latency"`
	Errors   int            `json:"errors"`   // answers other than 202, and failed requests
	Outcomes map[string]int `json:"outcomes"` // by status code
}

type ingestPhase struct {
	ingestResult
	RunsAttempted  int64 `json:"runs_claimed_by_worker"`
	RunsLeftQueued int64 `json:"runs_left_queued"` // then cleared, see probe.runs
	Diag           dbUse `json:"diagnostics"`
}

type pgbenchPhase struct {
	pgbenchRun
	Diag dbUse `json:"diagnostics"`
}

type openLoopResult struct {
	TargetRPS float64 `json:"target_rps"`
	ingestResult
	MaxSendLagMs float64 `json:"max_send_lag_ms"` // longest wait for a free client after the due time
	TargetP99Ms  float64 `json:"target_p99_ms"`
	Met          bool    `json:"met"`
}

type profileResult struct {
	Path        string `json:"path"`
	Concurrency int    `json:"concurrency"`
	ingestResult
}

// dbUse is what a phase cost, per operation (request or transaction).
type dbUse struct {
	CPU           cpuUse      `json:"cpu"`
	Waits         waitProfile `json:"waits"`
	CommitsPerOp  float64     `json:"commits_per_op"`
	WALSyncsPerOp float64     `json:"wal_syncs_per_op"`
	WALBytesPerOp float64     `json:"wal_bytes_per_op"`
	Statements    []statement `json:"top_statements,omitempty"`
}

type statement struct {
	Query   string  `json:"query"`
	Calls   int64   `json:"calls"`
	TotalMs float64 `json:"total_ms"`
	MeanMs  float64 `json:"mean_ms"`
}

func (r *results) summarize() {
	for _, l := range r.Results {
		r.MaxIngestRPS = max(r.MaxIngestRPS, l.Ingest.RPS)
		r.MaxPgbenchTPS = max(r.MaxPgbenchTPS, l.Pgbench.TPS)
	}
	if r.MaxPgbenchTPS > 0 {
		r.Ratio = r.MaxIngestRPS / r.MaxPgbenchTPS
	}
	r.TargetRatio = targetRatio
	r.RatioMet = r.Ratio >= targetRatio
}

func (r *results) bestLevel() level {
	best := r.Results[0]
	for _, l := range r.Results[1:] {
		if l.Ingest.RPS > best.Ingest.RPS {
			best = l
		}
	}
	return best
}

func writeJSON(path string, r *results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("failed to write results: %w", err)
	}
	return nil
}

func metOrMissed(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func printReport(w io.Writer, r *results) {
	server := "the server at " + r.Server.URL
	if r.Server.Started {
		server = fmt.Sprintf("slipway serve of %s: %d worker, pool of %d connections", r.Server.Source, r.Server.Workers, r.Server.PoolConns)
	}
	fmt.Fprintf(w, "\nWebhook ingest (%s) vs pgbench single-row insert\n", server)
	fmt.Fprintf(w, "%d CPUs, %s warm-up + %s measured per level, %s\n\n", r.CPUs, secs(r.WarmupS), secs(r.DurationS), r.Pgbench)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "concurrency\tingest req/s\tp50 ms\tp99 ms\terrors\tpgbench tps\tpgbench avg ms\tingest/pgbench\t\tpgbench insert+NOTIFY tps\t")
	for _, l := range r.Results {
		notify := "-"
		if l.PgbenchNotify != nil {
			notify = fmt.Sprintf("%.0f", l.PgbenchNotify.TPS)
		}
		fmt.Fprintf(tw, "%d\t%.0f\t%.2f\t%.2f\t%d\t%.0f\t%.2f\t%.2f\t\t%s\t\n", l.Concurrency, l.Ingest.RPS,
			l.Ingest.Latency.P50, l.Ingest.Latency.P99, l.Ingest.Errors, l.Pgbench.TPS, l.Pgbench.LatencyAvgMs, l.Ratio, notify)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nbest ingest %.0f req/s / best pgbench %.0f tps = %.2f (target >= %.2f: %s)\n",
		r.MaxIngestRPS, r.MaxPgbenchTPS, r.Ratio, r.TargetRatio, metOrMissed(r.RatioMet))
	if h := r.HalfRate; h != nil {
		fmt.Fprintf(w, "half rate, open loop at %.0f req/s: achieved %.0f req/s, %s, %d errors, max send lag %.2f ms (target p99 <= %.0f ms: %s)\n",
			h.TargetRPS, h.RPS, h.Latency, h.Errors, h.MaxSendLagMs, h.TargetP99Ms, metOrMissed(h.Met))
	}
	for _, l := range r.Results {
		if len(l.Ingest.Outcomes) > 1 || l.Ingest.Errors > 0 {
			fmt.Fprintf(w, "concurrency %d answers: %v\n", l.Concurrency, l.Ingest.Outcomes)
		}
	}

	fmt.Fprintf(w, "\nWhere the time goes, per request (ingest) or transaction (pgbench). CPU µs: the load generator (client),\n")
	fmt.Fprintf(w, "slipway itself, the processes it spawned (git, for planning), PostgreSQL, anything else on the machine.\n")
	fmt.Fprintf(w, "Then commits, WAL flushes and WAL bytes per op, and PostgreSQL's active backends with their waits.\n\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "conc\tphase\tbusy%\tclient\tslipway\tspawned\tpostgres\tother\tcommits\twal flush\twal B\tactive\twaits (share of active backends)")
	for _, l := range r.Results {
		row := func(phase string, d dbUse) {
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.0f\t%.1f\t%s\n", l.Concurrency, phase,
				d.CPU.BusyPct, d.CPU.ClientUs, d.CPU.ServerUs, d.CPU.SpawnedUs, d.CPU.PostgreUs, d.CPU.OtherUs,
				d.CommitsPerOp, d.WALSyncsPerOp, d.WALBytesPerOp, d.Waits.ActiveBackends, topWaits(d.Waits, 4))
		}
		row("ingest", l.Ingest.Diag)
		row("pgbench", l.Pgbench.Diag)
		if l.PgbenchNotify != nil {
			row("+NOTIFY", l.PgbenchNotify.Diag)
		}
	}
	tw.Flush()
	for _, l := range r.Results {
		fmt.Fprintf(w, "concurrency %d: the single worker claimed %d of the new runs during ingest; %d were left queued\n",
			l.Concurrency, l.Ingest.RunsAttempted, l.Ingest.RunsLeftQueued)
	}

	if len(r.Results) > 0 && r.Statements {
		best := r.bestLevel()
		fmt.Fprintf(w, "\nStatements by execution time at concurrency %d (pg_stat_statements; commit time not included)\n", best.Concurrency)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "phase\tcalls\tmean ms\ttotal ms\tquery")
		for _, p := range []struct {
			name string
			st   []statement
		}{{"ingest", best.Ingest.Diag.Statements}, {"pgbench", best.Pgbench.Diag.Statements}, {"+NOTIFY", notifyStatements(best)}} {
			for _, s := range p.st {
				fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.0f\t%s\n", p.name, s.Calls, s.MeanMs, s.TotalMs, clip(s.Query, 90))
			}
		}
		tw.Flush()
	}
	if p := r.Profile; p != nil {
		fmt.Fprintf(w, "\nin-process handler at concurrency %d: %.0f req/s, %s; CPU profile: %s\n",
			p.Concurrency, p.RPS, p.Latency, p.Path)
	}
}

func notifyStatements(l level) []statement {
	if l.PgbenchNotify == nil {
		return nil
	}
	return l.PgbenchNotify.Diag.Statements
}

func topWaits(p waitProfile, n int) string {
	var parts []string
	for i, e := range p.Events {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s %.0f%%", e.Event, 100*e.Share))
	}
	return strings.Join(parts, ", ")
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func secs(s float64) string { return fmt.Sprintf("%gs", s) }
