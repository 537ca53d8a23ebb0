package source

import (
	"context"
	"fmt"
	"strings"
)

// ChangedPaths lists the paths that differ between commits before and after,
// fetching first if the mirror lacks either. A rename counts as a deletion
// plus an addition, so both names are listed. It returns all=true, and no
// paths, when before is all zeros (a new branch) or cannot be found even
// after a fetch (a force push made it unreachable): the caller should then
// treat every path as changed. A missing after commit is an error.
func (c *Cache) ChangedPaths(ctx context.Context, repo Repo, before, after string) (paths []string, all bool, err error) {
	after, err = normalizeSHA(after)
	if err != nil {
		return nil, false, err
	}
	before, err = normalizeSHA(before)
	if err != nil {
		return nil, false, err
	}
	if before == zeroSHA {
		return nil, true, nil
	}
	dir, err := c.mirrorDir(repo)
	if err != nil {
		return nil, false, err
	}
	found, err := c.ensureCommits(ctx, repo, dir, after, before)
	if err != nil {
		return nil, false, fmt.Errorf("diffing %s..%s of %q: %w", before, after, repo.FullName, err)
	}
	if !found[0] {
		return nil, false, fmt.Errorf("diffing %s..%s of %q: commit %s %w", before, after, repo.FullName, after, ErrNotFound)
	}
	if !found[1] {
		c.logger.InfoContext(ctx, "before commit not in mirror, treating all paths as changed",
			"repo", repo.FullName, "before", before, "sha", after)
		return nil, true, nil
	}

	// diff-tree is the plumbing behind "git diff": its output does not
	// depend on porcelain settings. -z prints names raw, so spaces, newlines
	// and non-ASCII arrive intact instead of quoted.
	out, err := c.run(ctx, gitRun{
		gitDir: dir,
		args:   []string{"diff-tree", "-r", "-z", "--name-only", "--no-renames", before, after},
	})
	if err != nil {
		return nil, false, fmt.Errorf("diffing %s..%s of %q: %w", before, after, repo.FullName, err)
	}
	for _, p := range strings.Split(string(out), "\x00") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths, false, nil
}
