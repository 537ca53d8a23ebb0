package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/versions"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/dockercli"
	"github.com/slipway-dev/slipway/internal/engine"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/migrations"
)

// checkTimeout bounds each check, so that doctor never hangs on a host that does not answer. The
// AWS check gets more: the credentials chain may try the instance metadata service first.
const (
	checkTimeout    = 15 * time.Second
	awsCheckTimeout = 30 * time.Second
)

// oldestEngineAPI is the Engine API of Docker 20.10, the oldest engine Slipway supports.
const oldestEngineAPI = "1.41"

type status string

const (
	pass status = "PASS"
	warn status = "WARN"
	fail status = "FAIL"
	skip status = "SKIP"
)

// result is one line of doctor's report, and a hint under it when something is wrong.
type result struct {
	status       status
	detail, hint string
}

func passed(format string, args ...any) result {
	return result{status: pass, detail: fmt.Sprintf(format, args...)}
}
func skipped(why string) result { return result{status: skip, detail: why} }

func failed(err error, hint string) result {
	return result{status: fail, detail: err.Error(), hint: hint}
}

// report prints results as they come and counts them.
type report struct {
	out    io.Writer
	counts map[status]int
}

func (r *report) add(name string, res result) {
	r.counts[res.status]++
	detail := strings.ReplaceAll(res.detail, "\n", "\n"+strings.Repeat(" ", 18))
	fmt.Fprintf(r.out, "%s  %-11s %s\n", res.status, name, detail)
	if res.hint != "" {
		fmt.Fprintf(r.out, "%18shint: %s\n", "", res.hint)
	}
}

// doctor checks what slipway serve needs on this host, one line per check.
func doctor(ctx context.Context, args, env []string, stdout, stderr io.Writer) error {
	fs, s := newFlagSet("doctor", stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	r := &report{out: stdout, counts: map[status]int{}}
	within := func(d time.Duration, check func(context.Context) result) result {
		cctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		return check(cctx)
	}

	cfg, cfgErr := config.Load(s.config, s.env(env))
	r.add("config", configResult(s.config, env, cfgErr, cfg))
	unknown := cfg.UnknownEnv(env)
	if cfgErr != nil {
		unknown = config.Defaults().UnknownEnv(env)
	}
	for _, w := range unknown {
		r.add("environment", result{status: warn, detail: w})
	}
	noConfig := skipped("needs a valid configuration")

	if cfgErr != nil {
		r.add("database", noConfig)
		r.add("migrations", noConfig)
	} else {
		var st *store.Store
		res := within(checkTimeout, func(ctx context.Context) result {
			var err error
			st, err = store.Open(ctx, cfg.DatabaseURL.Reveal(), 2)
			if err != nil {
				return failed(err, "check database_url (SLIPWAY_DATABASE_URL), and that PostgreSQL runs and accepts this host")
			}
			return passed("PostgreSQL answers at %s", dbWhere(cfg.DatabaseURL))
		})
		r.add("database", res)
		if st == nil {
			r.add("migrations", skipped("needs the database"))
		} else {
			r.add("migrations", within(checkTimeout, func(ctx context.Context) result { return checkMigrations(ctx, st, s.config) }))
			st.Close()
		}
	}

	// Without a valid configuration the docker and git checks use the defaults.
	dc := cfg.Docker
	if cfgErr != nil {
		dc = config.Defaults().Docker
	}
	cli := within(checkTimeout, func(ctx context.Context) result { return checkDockerCLI(ctx, dc) })
	r.add("docker", cli)
	r.add("engine", within(checkTimeout, func(ctx context.Context) result { return checkEngine(ctx, dc, cli.status == pass) }))
	r.add("buildkit", within(checkTimeout, func(ctx context.Context) result { return checkBuildKit(ctx, dc, cli.status == pass) }))

	switch {
	case cfgErr != nil:
		r.add("registry", noConfig)
	case len(cfg.Registries) == 0:
		r.add("registry", skipped("no registries configured: images are pushed without a login"))
	}
	if cfgErr == nil {
		for i, reg := range cfg.Registries {
			r.add("registry", within(checkTimeout, func(ctx context.Context) result { return checkRegistry(ctx, i, reg, nil) }))
		}
	}

	r.add("git", within(checkTimeout, checkGit))
	if cfgErr == nil {
		r.add("git cache", checkDir("git.cache_dir (SLIPWAY_GIT_CACHE_DIR)", cfg.Git.CacheDir))
	}

	switch {
	case cfgErr != nil:
		r.add("aws", noConfig)
	case !cfg.AWS.Enabled():
		r.add("aws", skipped("aws.region is not set: no ECS target, no ECR logins"))
	default:
		r.add("aws", within(awsCheckTimeout, func(ctx context.Context) result { return checkAWS(ctx, cfg.AWS) }))
	}

	fmt.Fprintf(stdout, "\n%d passed, %d warnings, %d failed, %d skipped\n", r.counts[pass], r.counts[warn], r.counts[fail], r.counts[skip])
	if r.counts[fail] > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func configResult(path string, env []string, err error, cfg config.Config) result {
	if err != nil {
		err = errors.New(strings.TrimPrefix(err.Error(), "config: "))
		return failed(err, "fix the key the error names (README.md has the configuration reference), then run slipway doctor again")
	}
	if err := cfg.ValidateServe(); err != nil {
		return failed(err, "slipway serve refuses to start without it; migrate and doctor do not need it")
	}
	from := "no file, defaults and environment only"
	switch {
	case path != "":
		from = path
	case config.EnvMap(env)["SLIPWAY_CONFIG"] != "":
		from = config.EnvMap(env)["SLIPWAY_CONFIG"] + " (SLIPWAY_CONFIG)"
	}
	return passed("loads and validates (%s)", from)
}

// dbWhere names the database's host and name, never its user or password.
func dbWhere(dsn config.Secret) string {
	u, err := url.Parse(dsn.Reveal())
	if err != nil {
		return "the configured URL"
	}
	where := u.Host
	if where == "" {
		where = "the default host"
	}
	if name := strings.TrimPrefix(u.Path, "/"); name != "" {
		where += ", database " + name
	}
	return where
}

func checkMigrations(ctx context.Context, st *store.Store, configPath string) result {
	ms, err := store.LoadMigrations(migrations.FS)
	if err != nil {
		return failed(err, "this build's migrations are broken: report it")
	}
	hint := "run slipway migrate"
	if configPath != "" {
		hint += " --config " + configPath
	}
	hint += " (slipway serve migrates on start unless --migrate=false)"
	n, err := st.MigrationsPending(ctx, ms)
	if err != nil {
		// Most often no schema_migrations table: nothing was ever applied.
		return failed(fmt.Errorf("cannot tell which migrations are applied (an empty database?): %w", err), hint)
	}
	if n > 0 {
		return failed(fmt.Errorf("%d of %d migrations pending", n, len(ms)), hint)
	}
	return passed("all %d applied", len(ms))
}

// run runs a short command with the minimal environment every child gets, and returns its
// output, stdout and stderr together, trimmed.
func runTool(ctx context.Context, env map[string]string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = dockercli.Env(env)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second // a child that keeps the pipes open must not hold doctor
	err := cmd.Run()
	return strings.TrimSpace(out.String()), err
}

func dockerEnv(dc config.Docker) map[string]string {
	if dc.Host != "" {
		return map[string]string{"DOCKER_HOST": dc.Host}
	}
	return nil
}

func checkDockerCLI(ctx context.Context, dc config.Docker) result {
	hint := "install the docker CLI (Docker 25 or newer), or set docker.binary (SLIPWAY_DOCKER_BINARY)"
	path, err := exec.LookPath(dc.Binary)
	if err != nil {
		return failed(fmt.Errorf("%s not found: %w", dc.Binary, errors.Unwrap(err)), hint)
	}
	out, err := runTool(ctx, dockerEnv(dc), path, "--version")
	if err != nil {
		return failed(fmt.Errorf("%s --version: %w: %s", path, err, firstLine(out)), hint)
	}
	return passed("%s (%s)", firstLine(out), path)
}

func checkEngine(ctx context.Context, dc config.Docker, haveCLI bool) result {
	hint := "start dockerd, or point docker.host (SLIPWAY_DOCKER_HOST) at it; the user running slipway needs access to its socket (the docker group)"
	eng, err := engine.New(dc.Binary, dc.Host)
	if err != nil {
		return failed(err, hint)
	}
	defer eng.Close()
	if err := eng.Ping(ctx); err != nil {
		return failed(err, hint)
	}
	v, err := eng.API.ServerVersion(ctx)
	if err != nil {
		return failed(fmt.Errorf("asking the engine its version: %w", err), hint)
	}
	where := eng.Host
	if where == "" {
		where = eng.API.DaemonHost()
	}
	if versions.LessThan(v.APIVersion, oldestEngineAPI) {
		return failed(fmt.Errorf("the Docker Engine %s at %s speaks API %s; Slipway needs %s (Docker 20.10) or newer", v.Version, where, v.APIVersion, oldestEngineAPI),
			"upgrade the Docker Engine to 20.10 or newer")
	}
	if haveCLI {
		// Builds and pushes go through the CLI: it must be new enough for this engine.
		out, err := runTool(ctx, dockerEnv(dc), dc.Binary, "version", "--format", "{{.Server.APIVersion}}")
		if err != nil {
			return failed(fmt.Errorf("the docker CLI cannot talk to Docker Engine %s (API %s, oldest accepted %s): %s", v.Version, v.APIVersion, v.MinAPIVersion, lastLine(out)),
				"install a docker CLI whose API is at least the engine's oldest accepted one (Docker 25 or newer speaks every engine from 20.10)")
		}
	}
	return passed("Docker Engine %s at %s, API %s (accepts %s and newer)", v.Version, where, v.APIVersion, v.MinAPIVersion)
}

func checkBuildKit(ctx context.Context, dc config.Docker, haveCLI bool) result {
	if dc.BuildKit == "off" {
		return skipped("docker.buildkit is off: builds use the classic builder")
	}
	if !haveCLI {
		return skipped("needs the docker CLI")
	}
	out, err := runTool(ctx, dockerEnv(dc), dc.Binary, "buildx", "version")
	if err == nil {
		return passed("%s", firstLine(out))
	}
	hint := "install the buildx plugin (the docker-buildx package, or docker-buildx-plugin from Docker's repository)"
	if dc.BuildKit == "on" {
		return failed(fmt.Errorf("docker.buildkit is on but %s has no buildx plugin: every build fails", dc.Binary), hint)
	}
	ver, _ := runTool(ctx, dockerEnv(dc), dc.Binary, "--version")
	if major, ok := cliMajor(ver); ok && major < 23 {
		return passed("BuildKit is built into docker CLI %d (no buildx plugin)", major)
	}
	return result{status: warn, detail: "no buildx plugin: builds use the classic builder (Dockerfiles that need BuildKit, RUN --mount say, fail)",
		hint: hint}
}

// cliMajor reads the major version of `docker --version` ("Docker version 20.10.24+dfsg1, ...").
func cliMajor(out string) (int, bool) {
	_, rest, ok := strings.Cut(out, "version ")
	if !ok {
		return 0, false
	}
	var major int
	_, err := fmt.Sscanf(strings.TrimPrefix(rest, "v"), "%d", &major)
	return major, err == nil
}

func checkGit(ctx context.Context) result {
	hint := "install git: slipway fetches every commit with it"
	path, err := exec.LookPath("git")
	if err != nil {
		return failed(errors.New("git not found on PATH"), hint)
	}
	out, err := runTool(ctx, nil, path, "--version")
	if err != nil {
		return failed(fmt.Errorf("git --version: %w", err), hint)
	}
	return passed("%s (%s)", firstLine(out), path)
}

// checkDir checks that dir is a directory slipway can write in, or can be made as one: it makes
// and removes a file there (permission bits say nothing for root, or on a read-only mount).
func checkDir(key, dir string) result {
	hint := "create it, writable by the user running slipway, or set " + key + " elsewhere"
	p := filepath.Clean(dir)
	for {
		fi, err := os.Stat(p)
		if err == nil {
			if !fi.IsDir() {
				return failed(fmt.Errorf("%s is not a directory", p), hint)
			}
			probe, err := os.CreateTemp(p, ".slipway-doctor-*")
			if err != nil {
				return failed(fmt.Errorf("%s is not writable: %w", p, errors.Unwrap(err)), hint)
			}
			probe.Close()
			os.Remove(probe.Name())
			if p != filepath.Clean(dir) {
				return passed("%s will be created in %s", dir, p)
			}
			return passed("%s is writable", dir)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return failed(fmt.Errorf("%s: %w", dir, err), hint)
		}
		p = parent
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndex(s, "\n")+1:]
}
