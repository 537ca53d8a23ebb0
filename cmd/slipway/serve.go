package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/engine"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/metrics"
	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/web"
	"github.com/slipway-dev/slipway/internal/webhook"
	"github.com/slipway-dev/slipway/migrations"
)

func serve(ctx context.Context, args, env []string, stderr io.Writer) error {
	cfg, _, err := loadConfig("serve", args, env, stderr)
	if err != nil {
		return err
	}
	if err := cfg.ValidateServe(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	logger := newLogger(cfg, stderr)
	st, err := store.Open(ctx, cfg.DatabaseURL.Reveal(), int32(cfg.Workers*2+8))
	if err != nil {
		return err
	}
	defer st.Close()
	ms, err := store.LoadMigrations(migrations.FS)
	if err != nil {
		return err
	}
	if cfg.MigrateFirst() {
		if err := applyMigrations(ctx, st, ms, logger); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	metrics.RegisterQueueDepth(reg, st, []string{store.KindRun, store.KindDeployment}, logger)

	notifier := st.NewNotifier(logger)
	hook, err := webhook.NewHandler(webhook.Config{
		Notify:  notifier.Notify,
		Secrets: reveal(cfg.Webhook.Secrets),
		Keys:    cfg.WebhookSecrets,
		MaxBody: cfg.Webhook.MaxBodyBytes,
		Repos:   config.Repos(cfg.Repositories),
	}, st, m, logger)
	if err != nil {
		return err
	}

	// The one Docker engine every build, push and rollout uses.
	eng, err := engine.New(cfg.Docker.Binary, cfg.Docker.Host)
	if err != nil {
		return err
	}
	defer eng.Close()
	cache, err := gitCache(cfg, logger)
	if err != nil {
		return err
	}
	handlers, err := kinds(ctx, cfg, st, eng, cache, logger)
	if err != nil {
		return err
	}
	owner, err := ownerID()
	if err != nil {
		return err
	}
	q, err := queue.New(queue.Config{
		Owner:         owner,
		Workers:       cfg.Workers,
		Lease:         cfg.Queue.Lease.D(),
		PollInterval:  cfg.Queue.PollInterval.D(),
		RescueEvery:   cfg.Queue.RescueEvery.D(),
		BackoffBase:   cfg.Queue.BackoffBase.D(),
		ShutdownGrace: cfg.Queue.ShutdownGrace.D(),
		Kinds:         handlers,
	}, st, m, logger)
	if err != nil {
		return err
	}

	// Timeouts, and the budget of webhook bodies read before their signature is checked.
	limits := web.Limits{WebhookMaxBody: cfg.Webhook.MaxBodyBytes}
	authn, err := auth.New(cfg.Auth, reveal(cfg.API.Tokens), st, logger.With("component", "auth"))
	if err != nil {
		return err
	}
	actions := flow.NewActions(st, cfg.Policy.CheckSpec, cfg.Remote, cache)
	dash := web.NewDashboard(web.DashboardDeps{Store: st, Actions: actions, Audit: authn,
		Config: func() any { return cfg }, GitHubURL: cfg.GitHub.URL, Version: version,
		Logger: logger.With("component", "dashboard")})
	router := web.NewRouter(web.Deps{
		Webhook:       hook,
		Ready:         readiness{st: st, migrations: ms},
		Gatherer:      reg,
		MetricsPublic: cfg.Metrics.Public,
		API:           st,
		Actions:       actions,
		Auth:          authn,
		Dashboard:     dash,
		Version:       version,
		Logger:        logger,
		Limits:        limits,
	})
	srv := web.NewServer(router, limits)
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.ListenAddr, err)
	}
	logger.InfoContext(ctx, "slipway serving", "addr", ln.Addr().String(), "owner", owner, "workers", cfg.Workers, "version", version)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serving HTTP: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// Stop taking webhooks first; in-flight requests get a few seconds to finish.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 10*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	g.Go(func() error { return q.Run(gctx) })
	g.Go(func() error { notifier.Run(gctx); return nil })
	g.Go(func() error {
		// Live log tails fall back to polling when the listener is down: log it, serve on.
		if err := dash.Run(gctx); err != nil && gctx.Err() == nil {
			logger.WarnContext(gctx, "live log notifications stopped; tails poll", "err", err)
		}
		return nil
	})
	err = g.Wait()
	logger.Info("slipway stopped", "err", err)
	return err
}

func reveal(secrets []config.Secret) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		out[i] = []byte(s.Reveal())
	}
	return out
}

// ownerID names this replica in leases: readable, and unique even across restarts on one host.
func ownerID() (string, error) {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making owner id: %w", err)
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b)), nil
}

type readiness struct {
	st         *store.Store
	migrations []store.Migration
}

func (r readiness) Ready(ctx context.Context) error {
	if err := r.st.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	n, err := r.st.MigrationsPending(ctx, r.migrations)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%d migrations pending", n)
	}
	return nil
}
