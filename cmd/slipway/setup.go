package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/migrations"
)

// loadConfig parses the common flags, which override the environment, which overrides the file.
func loadConfig(name string, args, env []string, stderr io.Writer) (config.Config, *flag.FlagSet, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "path of the YAML config file (SLIPWAY_CONFIG)")
	listen := fs.String("listen-addr", "", "HTTP listen address (SLIPWAY_LISTEN_ADDR)")
	workers := fs.Int("workers", 0, "worker slots (SLIPWAY_WORKERS)")
	migrateFirst := fs.String("migrate", "", "migrate on start: true or false (SLIPWAY_MIGRATE_ON_START)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, nil, err
	}
	// Flags become environment entries appended last, so they win over the real environment.
	if *listen != "" {
		env = append(env, "SLIPWAY_LISTEN_ADDR="+*listen)
	}
	if *workers != 0 {
		env = append(env, "SLIPWAY_WORKERS="+strconv.Itoa(*workers))
	}
	if *migrateFirst != "" {
		env = append(env, "SLIPWAY_MIGRATE_ON_START="+*migrateFirst)
	}
	cfg, err := config.Load(*cfgPath, env)
	return cfg, fs, err
}

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func applyMigrations(ctx context.Context, st *store.Store, ms []store.Migration, logger *slog.Logger) error {
	applied, err := st.Migrate(ctx, ms)
	if err != nil {
		return err
	}
	logger.InfoContext(ctx, "migrations applied", "applied", applied, "known", len(ms))
	return nil
}

func migrate(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	cfg, _, err := loadConfig("migrate", args, env, stderr)
	if err != nil {
		return err
	}
	logger := newLogger(cfg, stderr)
	st, err := store.Open(ctx, cfg.DatabaseURL.Reveal(), 2)
	if err != nil {
		return err
	}
	defer st.Close()
	ms, err := store.LoadMigrations(migrations.FS)
	if err != nil {
		return err
	}
	if err := applyMigrations(ctx, st, ms, logger); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations up to date")
	return nil
}
