package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// loadGen posts one signed push payload with a fresh delivery id per request.
type loadGen struct {
	url       string
	body      []byte
	signature string
	client    *http.Client
}

func newLoadGen(baseURL, secret string, body []byte, maxConns int) *loadGen {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	tr := &http.Transport{
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &loadGen{
		url:       baseURL + "/webhooks/github",
		body:      body,
		signature: "sha256=" + hex.EncodeToString(m.Sum(nil)),
		client:    &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}
}

func (g *loadGen) close() { g.client.CloseIdleConnections() }

// outcome of one request: "202" when the run was queued, the status code otherwise, or "error:…".
func (g *loadGen) post(ctx context.Context, rng *rand.Rand) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(g.body))
	if err != nil {
		return "error: " + err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/slipway-bench")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", uuid(rng))
	req.Header.Set("X-Hub-Signature-256", g.signature)
	resp, err := g.client.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strconv.Itoa(resp.StatusCode)
}

// uuid makes a random version-4 UUID, the shape of GitHub's delivery ids: random keys land all over
// the primary-key index, as real deliveries (and pgbench's gen_random_uuid keys) do.
func uuid(rng *rand.Rand) string {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// tally collects the latencies and outcomes of one measured phase.
type tally struct {
	mu        sync.Mutex
	latencies []time.Duration
	outcomes  map[string]int
}

func newTally() *tally { return &tally{outcomes: map[string]int{}} }

func (t *tally) add(lat []time.Duration, outcomes map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.latencies = append(t.latencies, lat...)
	for k, n := range outcomes {
		t.outcomes[k] += n
	}
}

func (t *tally) result(window time.Duration) ingestResult {
	r := ingestResult{Requests: len(t.latencies), Outcomes: t.outcomes, Latency: summarize(t.latencies)}
	r.RPS = float64(r.Requests) / window.Seconds()
	for k, n := range t.outcomes {
		if k != "202" {
			r.Errors += n
		}
	}
	return r
}

// closedLoop runs conc clients, each sending its next request as soon as the last is answered,
// until to; only requests sent from from on are counted (the ones before warm up).
func (g *loadGen) closedLoop(ctx context.Context, conc int, from, to time.Time) ingestResult {
	t := newTally()
	var wg sync.WaitGroup
	for i := range conc {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			var lat []time.Duration
			outcomes := map[string]int{}
			for ctx.Err() == nil {
				start := time.Now()
				if !start.Before(to) {
					break
				}
				out := g.post(ctx, rng)
				if !start.Before(from) {
					lat = append(lat, time.Since(start))
					outcomes[out]++
				}
			}
			t.add(lat, outcomes)
		})
	}
	wg.Wait()
	return t.result(to.Sub(from))
}

// openLoop sends at a fixed rate whatever the answers do, and measures each request's latency from
// the time it was scheduled, not sent: a slow answer delays later requests (at most conns are in
// flight), and that wait counts, so no coordinated omission hides a stall.
func (g *loadGen) openLoop(ctx context.Context, rate float64, window time.Duration, conns int) openLoopResult {
	interval := time.Duration(float64(time.Second) / rate)
	n := int(window / interval)
	start := time.Now().Add(50 * time.Millisecond)
	due := make(chan time.Time, n)
	t := newTally()
	var maxLag time.Duration
	var lagMu sync.Mutex
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			var lat []time.Duration
			var lag time.Duration
			outcomes := map[string]int{}
			for at := range due {
				lag = max(lag, time.Since(at))
				outcomes[g.post(ctx, rng)]++
				lat = append(lat, time.Since(at))
			}
			t.add(lat, outcomes)
			lagMu.Lock()
			maxLag = max(maxLag, lag)
			lagMu.Unlock()
		})
	}
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		due <- at
	}
	close(due)
	wg.Wait()
	r := openLoopResult{TargetRPS: rate, ingestResult: t.result(window), MaxSendLagMs: ms(maxLag)}
	return r
}

// latencyStats are percentiles in milliseconds, nearest-rank.
type latencyStats struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarize(d []time.Duration) latencyStats {
	if len(d) == 0 {
		return latencyStats{}
	}
	s := append([]time.Duration(nil), d...)
	slices.Sort(s)
	at := func(p float64) float64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	return latencyStats{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(s[len(s)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (l latencyStats) String() string {
	return fmt.Sprintf("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms", l.P50, l.P90, l.P99, l.Max)
}
