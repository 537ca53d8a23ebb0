package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"time"
)

// pgbenchRun is pgbench's own account of a run.
type pgbenchRun struct {
	TPS          float64 `json:"tps"`
	Transactions int     `json:"transactions"`
	Failed       int     `json:"failed"`
	LatencyAvgMs float64 `json:"latency_avg_ms"`
	cpu          time.Duration
}

var (
	reTPS     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	reTxns    = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	reFailed  = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	reLatency = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
)

// runPgbench runs script against dbURL with conc clients for window (whole seconds), as
// pgbench -n -c C -j min(C,2) -T s -M prepared.
func runPgbench(ctx context.Context, bin, dbURL, script string, conc int, window time.Duration) (pgbenchRun, error) {
	args := []string{"-n", "-c", strconv.Itoa(conc), "-j", strconv.Itoa(min(conc, 2)),
		"-T", strconv.Itoa(int(window.Round(time.Second).Seconds())), "-M", "prepared", "-f", script, dbURL}
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return pgbenchRun{}, fmt.Errorf("pgbench -c %d failed: %w\n%s", conc, err, out)
	}
	var r pgbenchRun
	if m := reTPS.FindSubmatch(out); m != nil {
		r.TPS, _ = strconv.ParseFloat(string(m[1]), 64)
	} else {
		return pgbenchRun{}, fmt.Errorf("pgbench -c %d printed no tps:\n%s", conc, out)
	}
	if m := reTxns.FindSubmatch(out); m != nil {
		r.Transactions, _ = strconv.Atoi(string(m[1]))
	}
	if m := reFailed.FindSubmatch(out); m != nil {
		r.Failed, _ = strconv.Atoi(string(m[1]))
	}
	if m := reLatency.FindSubmatch(out); m != nil {
		r.LatencyAvgMs, _ = strconv.ParseFloat(string(m[1]), 64)
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return r, nil
}
