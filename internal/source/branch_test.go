package source

import (
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/testenv"
)

func TestBranchHead(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "one")
	first := src.Commit("first")
	c := newTestCache(t, Config{})
	repo := Repo{FullName: "o/r", CloneURL: fileURL(src)}
	branch := strings.TrimSpace(src.Git("symbolic-ref", "--short", "HEAD"))

	got, err := c.BranchHead(t.Context(), repo, branch)
	if err != nil || got != first {
		t.Fatalf("BranchHead = %q, %v; want %q", got, err, first)
	}
	src.Write("a.txt", "two")
	second := src.Commit("second")
	if got, err := c.BranchHead(t.Context(), repo, branch); err != nil || got != second {
		t.Fatalf("after a commit: BranchHead = %q, %v; want %q (a fresh fetch)", got, err, second)
	}
	for _, bad := range []string{"nope", "--upload-pack=x", "a..b", "x\x00y", "", "HEAD~1", first} {
		if got, err := c.BranchHead(t.Context(), repo, bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("BranchHead(%q) = %q, %v; want ErrNotFound", bad, got, err)
		}
	}
}
