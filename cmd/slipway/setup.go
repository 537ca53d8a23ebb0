package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/migrations"
)

// settings are the values of a command's flags; each command has only the flags it uses.
type settings struct {
	config, listen, migrate string
	workers                 int
	timeout                 time.Duration
}

// newFlagSet returns the flags of the command name. Flags override the environment, which
// overrides the file.
func newFlagSet(name string, output io.Writer) (*flag.FlagSet, *settings) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {} // run prints the command's help, on stdout when asked for
	s := &settings{}
	switch name {
	case "serve", "migrate", "doctor", "healthcheck":
		fs.StringVar(&s.config, "config", "", "path of the YAML config `FILE` (SLIPWAY_CONFIG)")
	}
	if name == "serve" {
		fs.StringVar(&s.listen, "listen-addr", "", "HTTP listen address, `HOST:PORT` (SLIPWAY_LISTEN_ADDR)")
		fs.IntVar(&s.workers, "workers", 0, "worker slots, `N` (SLIPWAY_WORKERS)")
		fs.StringVar(&s.migrate, "migrate", "", "migrate on start: `true|false` (SLIPWAY_MIGRATE_ON_START)")
	}
	if name == "healthcheck" {
		fs.DurationVar(&s.timeout, "timeout", 3*time.Second, "give up after `DURATION` (3s by default)")
	}
	return fs, s
}

// env returns env with the flags that were given appended last, so that they win over it.
func (s *settings) env(env []string) []string {
	env = slices.Clip(env)
	if s.listen != "" {
		env = append(env, "SLIPWAY_LISTEN_ADDR="+s.listen)
	}
	if s.workers != 0 {
		env = append(env, "SLIPWAY_WORKERS="+strconv.Itoa(s.workers))
	}
	if s.migrate != "" {
		env = append(env, "SLIPWAY_MIGRATE_ON_START="+s.migrate)
	}
	return env
}

// loadConfig parses the command's flags and loads the configuration. SLIPWAY_* variables that
// are no setting are warned about: in the log once it exists, on stderr when the load fails
// (a misspelt SLIPWAY_DATABASE_URL is then often the cause).
func loadConfig(name string, args, env []string, stderr io.Writer) (config.Config, *flag.FlagSet, error) {
	fs, s := newFlagSet(name, stderr)
	if err := fs.Parse(args); err != nil {
		return config.Config{}, nil, err
	}
	cfg, err := config.Load(s.config, s.env(env))
	if err != nil {
		for _, w := range config.Defaults().UnknownEnv(env) {
			fmt.Fprintln(stderr, "slipway: warning:", w)
		}
		return config.Config{}, fs, err
	}
	logger := newLogger(cfg, stderr)
	for _, w := range cfg.UnknownEnv(env) {
		logger.Warn(w)
	}
	return cfg, fs, nil
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
