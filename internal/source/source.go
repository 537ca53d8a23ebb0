// Package source keeps a local mirror of each repository Slipway deploys and
// materializes single commits from it.
//
// Every git operation runs the real git binary with an argument list (never a
// shell) and a minimal environment, so neither the host's git configuration
// nor values from a webhook can change what git does. Repository tokens are
// handed to git through the environment, never through argv or a URL, and
// git's error output is scrubbed of them before it leaves this package.
//
// Submodules are not supported: a checkout contains the superproject's files
// only, and a submodule appears as an empty directory.
//
// The cache directory must be on a local filesystem: mirrors are guarded by
// flock(2), which is not reliable over network filesystems.
package source

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/statedir"
)

var (
	// ErrNotFound reports that a commit or a file does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalidSHA reports a commit id that is not 40 hex characters.
	ErrInvalidSHA = errors.New("invalid commit sha")
	// ErrInvalidRepo reports a Repo whose name or clone URL is unusable.
	ErrInvalidRepo = errors.New("invalid repository")
	// ErrTooLarge reports a file above Config.MaxFileSize.
	ErrTooLarge = errors.New("file too large")
)

// Config configures a Cache. Only Dir is required.
type Config struct {
	// Dir is the root of the mirror cache; one bare repository per Repo.
	Dir string
	// WorkDir is where checkouts are created, a directory of Slipway's own: made 0700 when
	// missing, refused when another user owns it or can write to it. Each process keeps its
	// checkouts in a private directory there, and New removes the checkouts that processes which
	// died left behind (see statedir). Defaults to "checkouts" in statedir.Default().
	WorkDir string
	// GitBinary is the git executable, looked up in PATH. Defaults to "git".
	GitBinary string
	// Timeout bounds one Fetch, including waiting for the mirror's lock.
	// Defaults to 10 minutes.
	Timeout time.Duration
	// MaxFileSize caps what ReadFile returns. Defaults to 1 MiB.
	MaxFileSize int64
}

// Repo identifies a repository to mirror.
type Repo struct {
	// FullName is "owner/name"; it selects the mirror directory.
	FullName string
	// CloneURL is an http(s) or file:// URL, or an absolute local path.
	CloneURL string
	// Token, if set, is sent as HTTP basic auth for user x-access-token,
	// which is what GitHub installation tokens expect.
	Token string
}

// Cache is a directory of bare mirrors. It is safe for concurrent use, and
// several processes on one host may share the same Dir.
type Cache struct {
	dir         string
	work        *statedir.Dir // this process's checkouts
	home        string
	git         string
	timeout     time.Duration
	maxFileSize int64
	logger      *slog.Logger

	mu    sync.Mutex
	locks map[string]chan struct{} // mirror dir → one-slot semaphore
}

// minGitVersion is the first git that reads GIT_CONFIG_COUNT; older ones
// would silently drop the auth header and fail with a confusing 401.
var minGitVersion = [2]int{2, 31}

// New checks the git binary and prepares the cache directories.
func New(cfg Config, logger *slog.Logger) (*Cache, error) {
	if cfg.Dir == "" {
		return nil, errors.New("source: Config.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("resolving cache dir: %w", err)
	}
	gitPath, err := lookGit(cmp.Or(cfg.GitBinary, "git"))
	if err != nil {
		return nil, err
	}
	c := &Cache{
		dir:         dir,
		home:        filepath.Join(dir, ".home"), // mirror names never start with "."
		git:         gitPath,
		timeout:     cmp.Or(cfg.Timeout, 10*time.Minute),
		maxFileSize: cmp.Or(cfg.MaxFileSize, 1<<20),
		logger:      cmp.Or(logger, slog.New(slog.DiscardHandler)),
		locks:       make(map[string]chan struct{}),
	}
	for _, d := range []string{c.dir, c.home} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := c.checkVersion(context.Background()); err != nil {
		return nil, err
	}
	if c.work, err = openWorkDir(cfg.WorkDir); err != nil {
		return nil, err
	}
	return c, nil
}
