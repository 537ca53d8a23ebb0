package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// targetFloodMiB is the "RSS bounded" made a number: the webhook budget (64 MiB of bodies
// in flight) with room for the handler's copies and the garbage collector's slack.
const targetFloodMiB = 512

// floodResult is what -flood measures (issue 7, item 5): the memory of a real `slipway serve`
// while clients send it maximum-size webhook bodies with bad signatures as fast as it takes
// them, and slow senders trickle a body a byte at a time.
type floodResult struct {
	Clients     int            `json:"clients"`
	SlowSenders int            `json:"slow_senders"`
	BodyBytes   int64          `json:"body_bytes"`
	DurationS   float64        `json:"duration_s"`
	BaselineMiB float64        `json:"baseline_rss_mib"` // VmRSS once ready, before the flood
	PeakMiB     float64        `json:"peak_rss_mib"`     // the highest VmRSS sampled during it
	HWMMiB      float64        `json:"hwm_rss_mib"`      // VmHWM at the end: the kernel's peak
	Outcomes    map[string]int `json:"outcomes"`         // status code, or the client's error
	SlowCutS    []float64      `json:"slow_cut_s"`       // per slow sender cut off: seconds until the server hung up
	SlowOpen    int            `json:"slow_still_open"`  // slow senders still connected at the end
}

// flood starts a server (or uses -server-bin), floods it for -duration and reports.
func flood(ctx context.Context, cfg options, stdout, logw io.Writer) (err error) {
	logf := func(format string, args ...any) { fmt.Fprintf(logw, "slipway-bench: "+format+"\n", args...) }
	if cfg.url != "" {
		return errors.New("-flood starts a server of its own, to read its memory: drop -url")
	}
	tmp, err := os.MkdirTemp("", "slipway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := cfg.serverBin
	if bin == "" {
		logf("building ./cmd/slipway")
		if bin, err = buildServer(ctx, cfg.src, tmp); err != nil {
			return err
		}
	}
	dbURL, err := createDatabase(ctx, cfg.dbURL, cfg.dbName)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dropDatabase(context.WithoutCancel(ctx), cfg.dbURL, cfg.dbName)) }()
	srv, err := startServer(ctx, bin, dbURL, cfg.repo, tmp)
	if err != nil {
		return err
	}
	defer func() {
		if serr := srv.stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("server: %w; its log:\n%s", serr, srv.logTail(20)))
		}
	}()
	pid := srv.pid()
	res := floodResult{Clients: cfg.flood, SlowSenders: cfg.floodSlow, BodyBytes: cfg.floodBody,
		DurationS: cfg.duration.Seconds(), Outcomes: map[string]int{}}
	res.BaselineMiB = mib(procStatusKB(pid, "VmRSS"))
	logf("slipway serve (pid %d) at %s, %.0f MiB resident; %d clients sending %d-byte bodies with bad signatures and %d slow senders for %s",
		pid, srv.url, res.BaselineMiB, cfg.flood, cfg.floodBody, cfg.floodSlow, cfg.duration)

	fctx, cancel := context.WithTimeout(ctx, cfg.duration)
	defer cancel()
	samplerDone := make(chan float64)
	go func() {
		peak := 0.0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, mib(procStatusKB(pid, "VmRSS")))
			select {
			case <-fctx.Done():
				samplerDone <- peak
				return
			case <-tick.C:
			}
		}
	}()

	body := bytes.Repeat([]byte{' '}, int(cfg.floodBody))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	// The slow senders go first, so that they hold what the budget gives them when the flood
	// starts: what is measured is then how soon the server hangs up on them.
	for range cfg.floodSlow {
		wg.Go(func() {
			cut, ok := slowSend(fctx, srv.url, cfg.floodBody)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				res.SlowCutS = append(res.SlowCutS, cut.Round(time.Millisecond).Seconds())
			} else {
				res.SlowOpen++
			}
		})
	}
	if cfg.floodSlow > 0 {
		select {
		case <-fctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	for range cfg.flood {
		wg.Go(func() {
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			defer client.CloseIdleConnections()
			for fctx.Err() == nil {
				outcome := floodPost(fctx, client, srv.url, body)
				mu.Lock()
				res.Outcomes[outcome]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.PeakMiB = <-samplerDone
	res.HWMMiB = mib(procStatusKB(pid, "VmHWM"))
	delete(res.Outcomes, "cancelled") // requests cut short by the end of the run
	sort.Float64s(res.SlowCutS)
	printFlood(stdout, res)
	if cfg.out != "" {
		if err := writeFile(cfg.out, res); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "results written to", cfg.out)
	}
	return nil
}

// floodPost sends one maximum-size body with a wrong signature and returns the status code or
// what went wrong. A server that refuses before reading hangs up mid-body: "reset".
func floodPost(ctx context.Context, client *http.Client, base string, body []byte) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return "error: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", strconv.FormatInt(time.Now().UnixNano(), 10))
	req.Header.Set("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64))
	resp, err := client.Do(req)
	switch {
	case ctx.Err() != nil:
		return "cancelled"
	case err != nil && (errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") ||
		strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "EOF")):
		return "reset"
	case err != nil:
		return "error: " + err.Error()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// slowSend declares a body of n bytes and sends one byte every 5 s, as the attacker did,
// until the server hangs up (ok, with how long that took) or ctx ends.
func slowSend(ctx context.Context, base string, n int64) (time.Duration, bool) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return 0, false
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	start := time.Now()
	head := "POST /webhooks/github HTTP/1.1\r\nHost: slipway\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n" +
		"X-GitHub-Delivery: slow\r\nX-Hub-Signature-256: sha256=" + strings.Repeat("0", 64) + "\r\nContent-Length: " + strconv.FormatInt(n, 10) + "\r\n\r\n"
	if _, err := io.WriteString(conn, head); err != nil {
		return time.Since(start), true
	}
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for range tick.C {
			if _, err := conn.Write([]byte{' '}); err != nil {
				return
			}
		}
	}()
	_, _ = io.Copy(io.Discard, conn) // until the server hangs up, or the run ends
	if ctx.Err() != nil {
		return 0, false
	}
	return time.Since(start), true
}

func writeFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("failed to write results: %w", err)
	}
	return nil
}

func procStatusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

func mib(kb int64) float64 { return float64(kb) / 1024 }

func printFlood(w io.Writer, r floodResult) {
	fmt.Fprintf(w, "webhook flood: %d clients, %d-byte bodies with bad signatures, %d slow senders, %gs\n",
		r.Clients, r.BodyBytes, r.SlowSenders, r.DurationS)
	fmt.Fprintf(w, "  server RSS: %.0f MiB before, %.0f MiB peak sampled, %.0f MiB VmHWM (target ≤ %d MiB: %s)\n",
		r.BaselineMiB, r.PeakMiB, r.HWMMiB, targetFloodMiB, metOrMissed(r.HWMMiB <= targetFloodMiB))
	keys := make([]string, 0, len(r.Outcomes))
	for k := range r.Outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, r.Outcomes[k])
	}
	fmt.Fprintf(w, "  outcomes: %s\n", strings.Join(parts, ", "))
	if r.SlowSenders > 0 {
		fmt.Fprintf(w, "  slow senders: %d cut off (after %v s), %d still connected at the end\n", len(r.SlowCutS), r.SlowCutS, r.SlowOpen)
	}
}
