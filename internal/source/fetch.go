package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// fetchRefspecs mirror branches and tags only. A --mirror clone would also
// take refs/pull/*, which on GitHub is every pull request ever opened, and
// pushes never deploy those.
var fetchRefspecs = []string{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}

// fetchConfig keeps git's automatic housekeeping inside the fetch, and so
// inside the lock: a detached gc would go on repacking after we unlock.
var fetchConfig = []string{"gc.autoDetach=false", "maintenance.autoDetach=false"}

// Fetch brings repo's mirror up to date, creating it on first use. Branches
// and tags deleted upstream are pruned. It waits for other fetches of the
// same repository, in this process or another, and gives up after
// Config.Timeout.
func (c *Cache) Fetch(ctx context.Context, repo Repo) error {
	return c.fetch(ctx, repo, nil)
}

// fetch is Fetch that skips the network when, once the lock is held, the
// mirror already has every commit in want: when several deployments of one
// push need the same new commit, the first fetch serves them all.
func (c *Cache) fetch(ctx context.Context, repo Repo, want []string) error {
	dir, err := c.mirrorDir(repo)
	if err != nil {
		return err
	}
	isHTTPS, err := checkCloneURL(repo.CloneURL)
	if err != nil {
		return fmt.Errorf("fetching %q: %w", repo.FullName, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	start := time.Now()
	lock, unlock, err := c.lockMirror(ctx, dir)
	if err != nil {
		return fmt.Errorf("fetching %q: %w", repo.FullName, err)
	}
	defer unlock()
	waited := time.Since(start)

	initial, err := c.initMirror(ctx, dir, lock)
	if err != nil {
		return fmt.Errorf("fetching %q: %w", repo.FullName, err)
	}
	if !initial && len(want) > 0 {
		if found, err := c.lookupCommits(ctx, dir, want...); err == nil && allTrue(found) {
			c.logger.DebugContext(ctx, "commits already fetched", "repo", repo.FullName, "lock_wait", waited)
			return nil
		}
	}
	if err := removeStaleLocks(dir); err != nil {
		return fmt.Errorf("fetching %q: %w", repo.FullName, err)
	}
	var env []string
	if isHTTPS {
		env = authEnv(repo.Token)
	}
	// The URL is given on every fetch rather than stored as a remote, so a
	// changed CloneURL takes effect and nothing about credentials is kept.
	args := append([]string{"fetch", "--prune", "--quiet", "--", repo.CloneURL}, fetchRefspecs...)
	if _, err := c.run(ctx, gitRun{
		gitDir: dir, config: fetchConfig, args: args, env: env,
		scrub: newScrubber(repo.Token), lock: lock,
	}); err != nil {
		return fmt.Errorf("fetching %q: %w", repo.FullName, err)
	}
	c.logger.InfoContext(ctx, "fetched repository",
		"repo", repo.FullName, "initial", initial,
		"lock_wait", waited, "duration", time.Since(start))
	return nil
}

// initMirror creates an empty bare repository if dir does not hold one yet.
// This stands in for "git clone --mirror": init is idempotent and a failed
// first fetch leaves a usable empty mirror that the next fetch fills, where
// a half-done clone would leave a directory to detect and delete. It also
// lets the lock file live in the mirror directory before the mirror exists.
func (c *Cache) initMirror(ctx context.Context, dir string, lock *os.File) (bool, error) {
	if ready(dir) {
		return false, nil
	}
	_, err := c.run(ctx, gitRun{
		config: []string{"init.defaultBranch=main"},
		args:   []string{"init", "--bare", "--quiet", "--template=", dir},
		lock:   lock,
	})
	if err != nil {
		return false, fmt.Errorf("initializing mirror: %w", err)
	}
	return true, nil
}

// ready reports whether dir looks like an initialized bare repository. An
// init interrupted half-way fails the check and is simply run again.
func ready(dir string) bool {
	for _, name := range []string{"HEAD", "config", "objects", "refs"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return false
		}
	}
	return true
}

// removeStaleLocks deletes lock files left by a git that was killed without
// a chance to clean up (OOM, power loss). Git would otherwise refuse to
// update those refs forever. It must only run under the mirror's flock:
// every git that writes to the mirror inherits that lock, so none is alive.
func removeStaleLocks(dir string) error {
	for _, name := range []string{"HEAD.lock", "config.lock", "packed-refs.lock", "shallow.lock"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing stale %s: %w", name, err)
		}
	}
	err := filepath.WalkDir(filepath.Join(dir, "refs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".lock") {
			return os.Remove(path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("removing stale ref locks: %w", err)
	}
	return nil
}
