package source

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/slipway-dev/slipway/internal/statedir"
)

// Checkout is the tree of one commit in a private directory. Dir holds the
// files only: there is no .git, and submodules are left as empty
// directories because they are not supported.
type Checkout struct {
	Dir string
	SHA string

	root string // Dir's parent, which also holds the private index
}

// Close removes the checkout from disk.
func (co *Checkout) Close() error {
	if err := os.RemoveAll(co.root); err != nil {
		return fmt.Errorf("removing checkout of %s: %w", co.SHA, err)
	}
	return nil
}

// openWorkDir opens this process's directory for checkouts under dir (see Config.WorkDir),
// removing what dead processes left there: a killed server's checkouts hold the repository's
// files, and nothing else would ever remove them.
func openWorkDir(dir string) (*statedir.Dir, error) {
	work, err := statedir.Open(cmp.Or(dir, filepath.Join(statedir.Default(), "checkouts")))
	if err != nil {
		return nil, fmt.Errorf("preparing the checkout dir: %w", err)
	}
	return work, nil
}

// Checkout writes the files of commit sha into a fresh directory under
// Config.WorkDir, fetching first if the mirror does not have the commit.
// sha must be a full 40-character hex commit id. The caller must Close the
// result.
//
// The files are written with "git read-tree --reset -u" using a work tree
// and an index file that belong to this checkout alone, so the mirror is
// only read: any number of checkouts, of the same or different commits, can
// run at once, and alongside a fetch, with no lock. "git worktree add" was
// rejected because it records each worktree inside the mirror, which needs
// a lock to add and a prune to clean up, and leaks entries when a process
// dies. "git checkout SHA -- ." would do as well, but fails on an empty tree.
// A concurrent gc cannot pull objects away either: it only prunes objects
// that are unreachable and two weeks old.
func (c *Cache) Checkout(ctx context.Context, repo Repo, sha string) (*Checkout, error) {
	sha, err := normalizeSHA(sha)
	if err != nil {
		return nil, err
	}
	dir, err := c.mirrorDir(repo)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	found, err := c.ensureCommits(ctx, repo, dir, sha)
	if err != nil {
		return nil, fmt.Errorf("checking out %s of %q: %w", sha, repo.FullName, err)
	}
	if !found[0] {
		return nil, fmt.Errorf("checking out %s of %q: commit %w", sha, repo.FullName, ErrNotFound)
	}

	root, err := c.work.MkdirTemp("checkout-") // 0700
	if err != nil {
		return nil, fmt.Errorf("creating checkout dir: %w", err)
	}
	co := &Checkout{Dir: filepath.Join(root, "src"), SHA: sha, root: root}
	if err := c.materialize(ctx, dir, co); err != nil {
		// The checkout's own error matters more than a failed cleanup.
		_ = co.Close()
		return nil, fmt.Errorf("checking out %s of %q: %w", sha, repo.FullName, err)
	}
	c.logger.DebugContext(ctx, "checked out commit",
		"repo", repo.FullName, "sha", sha, "dir", co.Dir, "duration", time.Since(start))
	return co, nil
}

func (c *Cache) materialize(ctx context.Context, mirror string, co *Checkout) error {
	if err := os.Mkdir(co.Dir, 0o700); err != nil {
		return fmt.Errorf("creating checkout dir: %w", err)
	}
	_, err := c.run(ctx, gitRun{
		gitDir:   mirror,
		workTree: co.Dir,
		args:     []string{"read-tree", "--reset", "-u", co.SHA},
		env:      []string{"GIT_INDEX_FILE=" + filepath.Join(co.root, "index")},
	})
	return err
}
