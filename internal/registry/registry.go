// Package registry talks to OCI registries with the server's credentials: docker push through the
// CLI (the engine holds the image) and manifest digests through the registry HTTP API v2. The
// credentials are the config's static logins (Static) and Amazon ECR's tokens (ECR).
//
// Why not google/go-containerregistry: it would replace only the digest read and its
// authentication (session, Digest: a HEAD per reference, Basic and Bearer, under 300 lines,
// tested against a real registry); the push must stay docker push, since the image lives in the
// engine that built it and ggcr's daemon source exports whole images through `docker save`.
// "Does this digest still exist" is Digest on repo@sha256:…, one HEAD here as in ggcr's
// remote.Head. Its remote package would add five modules (ggcr, docker/cli for its keychain,
// docker-credential-helpers, klauspost/compress, logrus), about 60 packages and 4 MB of binary,
// for code we do not call. Worth adopting when Slipway copies images between registries or
// pushes without an engine (crane's Copy and remote.Write are the parts that earn their weight).
package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/engine"
	"github.com/slipway-dev/slipway/internal/statedir"
)

// Config configures a Registry.
type Config struct {
	// Engine is the Docker engine that pushes, with the docker CLI that drives it.
	Engine *engine.Engine
	// Insecure lists registry hosts ("127.0.0.1:5000") that Digest reaches over plain http.
	// Loopback addresses and localhost always are. The engine has its own list for docker push
	// (dockerd --insecure-registry), which likewise always includes 127.0.0.0/8.
	Insecure []string
	Timeout  time.Duration // per Push or Digest call; default 10m
	// StateDir is Slipway's own state directory. Each push writes its Docker config, which holds
	// the registry's login, under StateDir/docker-config (0700) and removes it when docker push
	// ends; New removes what a process that died during a push left there. Default:
	// statedir.Default().
	StateDir string
}

// Registry pushes images and reads manifest digests. It is safe for concurrent use.
type Registry struct {
	cfg    Config
	docker string
	creds  Credentials
	logger *slog.Logger
	client *http.Client
	// configs holds the per-push Docker configs.
	configs *statedir.Dir
}

var _ deploy.Registry = (*Registry)(nil)

// New checks cfg and finds the docker binary. creds may be nil: every registry is then anonymous.
func New(cfg Config, creds Credentials, logger *slog.Logger) (*Registry, error) {
	if cfg.Engine == nil {
		return nil, errors.New("registry: an engine is required")
	}
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Minute)
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("registry: negative timeout %s", cfg.Timeout)
	}
	docker, err := exec.LookPath(cfg.Engine.Binary)
	if err != nil {
		return nil, fmt.Errorf("registry: finding docker binary %q: %w", cfg.Engine.Binary, err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if creds == nil {
		creds = Static(nil)
	}
	configs, err := statedir.Open(filepath.Join(cmp.Or(cfg.StateDir, statedir.Default()), "docker-config"))
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = 60 * time.Second
	return &Registry{
		cfg:     cfg,
		docker:  docker,
		creds:   creds,
		logger:  logger,
		client:  &http.Client{Transport: transport},
		configs: configs,
	}, nil
}

// scheme is http for the hosts the operator marked insecure and for this machine, https otherwise.
func (r *Registry) scheme(host string) string {
	if slices.Contains(r.cfg.Insecure, host) || isLocal(host) {
		return "http"
	}
	return "https"
}

func isLocal(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// invalidate tells the credentials that host refused password. It reports whether a fresh Lookup
// may give another login, worth one more try.
func (r *Registry) invalidate(ctx context.Context, host, password string) bool {
	inv, ok := r.creds.(Invalidator)
	if !ok || password == "" || !inv.Invalidate(host, password) {
		return false
	}
	r.logger.InfoContext(ctx, "registry refused the login; trying once more with a fresh one", "host", host)
	return true
}
