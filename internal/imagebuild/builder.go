// Package build builds container images with the docker CLI and streams the output, line by line,
// to the deployment's log.
package imagebuild

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
	"github.com/slipway-dev/slipway/internal/engine"
	"github.com/slipway-dev/slipway/internal/repofs"
)

// BuildKit modes of Config.BuildKit.
const (
	BuildKitAuto = "auto"
	BuildKitOn   = "on"
	BuildKitOff  = "off"
)

// Config configures a Builder. Only Engine is required: BuildKit is then chosen automatically, with
// a 30 minute limit per build.
type Config struct {
	// Engine is the Docker engine that builds, with the docker CLI that drives it.
	Engine *engine.Engine
	// BuildKit is "auto" (default), "on" or "off". Auto turns it on when `docker buildx version`
	// works or the CLI is older than 23 (which has BuildKit built in), else off: a CLI from 23 on
	// without the buildx plugin cannot build with BuildKit at all.
	BuildKit string
	// Network is the network mode of RUN steps (--network), "" for the engine's default. An
	// engine without a bridge network (dockerd --bridge=none) needs "host" for BuildKit builds.
	Network string
	Timeout time.Duration // per build; default 30m
}

// Builder runs docker build. It is safe for concurrent use.
type Builder struct {
	cfg    Config
	docker string
	logger *slog.Logger

	mu       sync.Mutex
	buildKit *bool // resolved on the first build when cfg.BuildKit is auto
}

var _ deploy.Builder = (*Builder)(nil)

// New checks cfg and finds the docker binary; it runs nothing.
func New(cfg Config, logger *slog.Logger) (*Builder, error) {
	if cfg.Engine == nil {
		return nil, errors.New("build: an engine is required")
	}
	cfg.BuildKit = cmp.Or(cfg.BuildKit, BuildKitAuto)
	cfg.Timeout = cmp.Or(cfg.Timeout, 30*time.Minute)
	switch cfg.BuildKit {
	case BuildKitAuto, BuildKitOn, BuildKitOff:
	default:
		return nil, fmt.Errorf("build: BuildKit must be auto, on or off, not %q", cfg.BuildKit)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("build: negative timeout %s", cfg.Timeout)
	}
	docker, err := exec.LookPath(cfg.Engine.Binary)
	if err != nil {
		return nil, fmt.Errorf("build: finding docker binary %q: %w", cfg.Engine.Binary, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b := &Builder{cfg: cfg, docker: docker, logger: logger}
	if cfg.BuildKit != BuildKitAuto {
		on := cfg.BuildKit == BuildKitOn
		b.buildKit = &on
	}
	return b, nil
}

// Build runs docker build for req. Cancelling ctx stops the CLI (and with it the build on the
// daemon); the error then wraps ctx.Err(). A failed build's error ends with the last lines of
// its output, the whole of which went to log.
func (b *Builder) Build(ctx context.Context, req deploy.BuildRequest, log deploy.LogFunc) error {
	if log == nil {
		log = func(string, string) {}
	}
	timedOut := fmt.Errorf("build timed out after %s", b.cfg.Timeout)
	ctx, cancel := context.WithTimeoutCause(ctx, b.cfg.Timeout, timedOut)
	defer cancel()

	paths, err := resolvePaths(req)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	buildKit, err := b.useBuildKit(ctx)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	args, err := buildArgs(req, paths, b.cfg.Network, buildKit)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}

	start := time.Now()
	b.logger.InfoContext(ctx, "docker build started",
		"tags", req.Tags, "dockerfile", req.Dockerfile, "context", req.Context, "buildkit", buildKit)
	err = dockercli.Run(ctx, dockercli.Cmd{
		Binary: b.docker,
		Args:   args,
		Env:    b.env(buildKit),
		Dir:    req.Dir,
		Line:   func(line string) { log("build", line) },
		Noise:  noise,
	})
	elapsed := time.Since(start).Round(time.Millisecond)
	if err != nil {
		// The error names docker build and, after a timeout, wraps timedOut as the cause.
		b.logger.InfoContext(ctx, "docker build failed", "tags", req.Tags, "elapsed", elapsed, "err", err)
		return fmt.Errorf("building %s: %w", strings.Join(req.Tags, ", "), err)
	}
	b.logger.InfoContext(ctx, "docker build done", "tags", req.Tags, "elapsed", elapsed)
	return nil
}

func (b *Builder) env(buildKit bool) []string {
	set := map[string]string{
		"DOCKER_BUILDKIT":  "0",
		"DOCKER_CLI_HINTS": "false", // no "What's next" adverts in the build log
	}
	if buildKit {
		set["DOCKER_BUILDKIT"] = "1"
	}
	return b.cfg.Engine.Env(set)
}

// buildPaths are a request's paths made absolute, symlinks resolved, and checked to stay inside
// its Dir; the rel fields are the same paths relative to Dir, for reading them through a
// repofs.Dir.
type buildPaths struct {
	context    string
	dockerfile string

	contextRel    string
	dockerfileRel string
}

// resolvePaths refuses a context or Dockerfile outside req.Dir, symlinks included: the pipeline
// file comes from the repository, and a Dockerfile that is a link to a host file would show that
// file's lines in a parse error, in the build log. The check is repofs's, as for every file of a
// checkout the server reads.
func resolvePaths(req deploy.BuildRequest) (buildPaths, error) {
	if req.Dir == "" || !filepath.IsAbs(req.Dir) {
		return buildPaths{}, fmt.Errorf("checkout dir %q is not an absolute path", req.Dir)
	}
	d, err := repofs.Open(req.Dir)
	if err != nil {
		return buildPaths{}, err
	}
	defer d.Close()
	return resolveIn(d, req)
}

// resolveIn is resolvePaths in a checkout already open.
func resolveIn(d *repofs.Dir, req deploy.BuildRequest) (buildPaths, error) {
	rel := req.Dockerfile
	if rel == "" {
		rel = filepath.Join(cmp.Or(req.Context, "."), "Dockerfile")
	}
	var (
		p   buildPaths
		err error
	)
	if p.context, err = d.RealPath(cmp.Or(req.Context, ".")); err != nil {
		return buildPaths{}, fmt.Errorf("build context: %w", err)
	}
	if p.dockerfile, err = d.RealPath(rel); err != nil {
		return buildPaths{}, fmt.Errorf("dockerfile: %w", err)
	}
	p.contextRel, _ = filepath.Rel(d.Name(), p.context)
	p.dockerfileRel, _ = filepath.Rel(d.Name(), p.dockerfile)
	return p, nil
}

// buildArgs is the docker build command line. Every flag takes its value after "=", so a value
// that starts with "-" can never be read as a flag; maps are sorted so the same request always
// gives the same command.
func buildArgs(req deploy.BuildRequest, p buildPaths, network string, buildKit bool) ([]string, error) {
	args := []string{"build", "--file=" + p.dockerfile}
	if buildKit {
		args = append(args, "--progress=plain")
	} else {
		// The classic builder keeps a failed step's container unless told; BuildKit never does.
		args = append(args, "--force-rm")
	}
	if req.Stage != "" {
		args = append(args, "--target="+req.Stage)
	}
	if network != "" {
		args = append(args, "--network="+network)
	}
	for _, k := range slices.Sorted(maps.Keys(req.BuildArgs)) {
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("invalid build arg name %q", k)
		}
		args = append(args, "--build-arg="+k+"="+req.BuildArgs[k])
	}
	for _, k := range slices.Sorted(maps.Keys(req.Labels)) {
		if k == "" || strings.Contains(k, "=") {
			return nil, fmt.Errorf("invalid label name %q", k)
		}
		args = append(args, "--label="+k+"="+req.Labels[k])
	}
	for _, t := range req.Tags {
		if t == "" || strings.ContainsAny(t, " \t\n") {
			return nil, fmt.Errorf("invalid tag %q", t)
		}
		args = append(args, "--tag="+t)
	}
	return append(args, p.context), nil
}

// noiseRE matches BuildKit progress lines that say nothing about a failure: "#5 sha256:…",
// "#5 DONE 0.1s", "#5 CACHED", "#2 transferring context: 2B done".
var noiseRE = regexp.MustCompile(`^#\d+ (?:sha256:[0-9a-f]{64}|DONE [0-9.]+s|CACHED|transferring (?:context|dockerfile): .*)$`)

func noise(line string) bool { return noiseRE.MatchString(line) }
