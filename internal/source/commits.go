package source

import (
	"context"
	"fmt"
	"strings"
)

// lookupCommits reports which of shas are commits in the mirror at dir. One
// cat-file --batch-check answers for all of them and prints "missing"
// instead of failing, so absence is never guessed from an exit status.
func (c *Cache) lookupCommits(ctx context.Context, dir string, shas ...string) ([]bool, error) {
	found := make([]bool, len(shas))
	if !ready(dir) {
		return found, nil
	}
	var in strings.Builder
	for _, sha := range shas {
		in.WriteString(sha + "^{commit}\n")
	}
	out, err := c.run(ctx, gitRun{
		gitDir: dir,
		args:   []string{"cat-file", "--batch-check=%(objectname) %(objecttype)"},
		stdin:  strings.NewReader(in.String()),
	})
	if err != nil {
		return nil, fmt.Errorf("looking up commits: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(shas) {
		return nil, fmt.Errorf("looking up commits: %d answers for %d commits", len(lines), len(shas))
	}
	for i, line := range lines {
		found[i] = line == shas[i]+" commit"
	}
	return found, nil
}

// ensureCommits is lookupCommits with one Fetch in between if anything is
// missing, or if the mirror could not be read at all: a fetch is what
// creates or repairs it.
func (c *Cache) ensureCommits(ctx context.Context, repo Repo, dir string, shas ...string) ([]bool, error) {
	found, err := c.lookupCommits(ctx, dir, shas...)
	if err == nil && allTrue(found) {
		return found, nil
	}
	if err := c.fetch(ctx, repo, shas); err != nil {
		return nil, err
	}
	return c.lookupCommits(ctx, dir, shas...)
}

func allTrue(bs []bool) bool {
	for _, b := range bs {
		if !b {
			return false
		}
	}
	return true
}
