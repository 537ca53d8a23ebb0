package source

import (
	"context"
	"fmt"
	"strings"
)

// BranchHead fetches repo and returns the commit its branch points at, or ErrNotFound. The
// branch name is checked by git's own rules for branch names before it is used.
func (c *Cache) BranchHead(ctx context.Context, repo Repo, branch string) (string, error) {
	if branch == "" || strings.HasPrefix(branch, "-") || strings.ContainsAny(branch, "\x00\n") {
		return "", fmt.Errorf("branch %q: %w", branch, ErrNotFound)
	}
	if _, err := c.run(ctx, gitRun{args: []string{"check-ref-format", "--branch", branch}}); err != nil {
		return "", fmt.Errorf("branch %q is not a valid branch name: %w", branch, ErrNotFound)
	}
	if err := c.Fetch(ctx, repo); err != nil {
		return "", err
	}
	dir, err := c.mirrorDir(repo)
	if err != nil {
		return "", err
	}
	out, err := c.run(ctx, gitRun{gitDir: dir,
		args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", "refs/heads/" + branch + "^{commit}"}})
	if err != nil {
		return "", fmt.Errorf("branch %q of %s: %w", branch, repo.FullName, ErrNotFound)
	}
	sha, err := normalizeSHA(strings.TrimSpace(string(out)))
	if err != nil {
		return "", fmt.Errorf("branch %q of %s: %w", branch, repo.FullName, err)
	}
	return sha, nil
}
