package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/metrics"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/webhook"
)

// profileHandler serves the real webhook handler from this process, on a pool as large as the
// server's, drives it at conc for window, and writes a CPU profile of it all. The server has no
// pprof endpoint; this is the same code on the same database, seen from inside. The profile holds
// the load generator too: in pprof, focus on webhook.(*Handler).ServeHTTP.
func profileHandler(ctx context.Context, dbURL, repo string, body []byte, conc int, window time.Duration, path string) (ingestResult, error) {
	st, err := store.Open(ctx, dbURL, 1*2+8) // as `slipway serve` with SLIPWAY_WORKERS=1
	if err != nil {
		return ingestResult{}, err
	}
	defer st.Close()
	secret, err := randomHex(16)
	if err != nil {
		return ingestResult{}, err
	}
	hook, err := webhook.NewHandler(webhook.Config{
		Secrets: [][]byte{[]byte(secret)},
		Repos:   config.Repos{{Name: repo}},
	}, st, metrics.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		return ingestResult{}, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/github", hook)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return ingestResult{}, fmt.Errorf("failed to listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-served
	}()

	gen := newLoadGen("http://"+ln.Addr().String(), secret, body, conc)
	defer gen.close()
	gen.closedLoop(ctx, conc, time.Now(), time.Now().Add(time.Second)) // connections, pool, caches

	f, err := os.Create(path)
	if err != nil {
		return ingestResult{}, fmt.Errorf("failed to create profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return ingestResult{}, fmt.Errorf("failed to start CPU profile: %w", err)
	}
	from := time.Now()
	res := gen.closedLoop(ctx, conc, from, from.Add(window))
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return ingestResult{}, fmt.Errorf("failed to write profile: %w", err)
	}
	return res, nil
}
