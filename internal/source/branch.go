package source

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ValidBranch reports whether name can be a branch, by git's rules for ref names, roughly:
// anything it refuses, git would refuse too (BranchHead also asks git itself).
func ValidBranch(name string) bool {
	return name != "" && utf8.ValidString(name) && len(name) <= 255 && !strings.ContainsAny(name, " \t\r\n\x00~^:?*[\\") &&
		!strings.Contains(name, "..") && !strings.HasPrefix(name, "-") && !strings.HasPrefix(name, "/") &&
		!strings.HasSuffix(name, "/") && !strings.HasSuffix(name, ".lock") && !strings.Contains(name, "@{")
}

// BranchHead fetches repo and returns the commit its branch points at, or ErrNotFound. The
// branch name is checked by git's own rules for branch names before it is used.
func (c *Cache) BranchHead(ctx context.Context, repo Repo, branch string) (string, error) {
	if !ValidBranch(branch) {
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
