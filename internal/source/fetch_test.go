package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/testenv"
)

func TestFetch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(*testRepo) string
	}{
		{"file URL", fileURL},
		{"plain path", func(r *testRepo) string { return r.Dir }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := testenv.NewGitRepo(t)
			c := newTestCache(t, Config{})
			repo := Repo{FullName: "owner/app", CloneURL: tc.url(src)}

			src.Write("a.txt", "one")
			first := src.Commit("first")
			src.Git("branch", "feature")
			if err := c.Fetch(t.Context(), repo); err != nil {
				t.Fatalf("first Fetch: %v", err)
			}
			if got := mirrorRef(t, c, repo, "refs/heads/main"); got != first {
				t.Fatalf("main after first fetch = %q, want %s", got, first)
			}
			if got := mirrorRef(t, c, repo, "refs/heads/feature"); got == "" {
				t.Fatal("feature branch was not mirrored")
			}

			src.Write("a.txt", "two")
			second := src.Commit("second")
			src.Git("branch", "--delete", "--force", "feature")
			if err := c.Fetch(t.Context(), repo); err != nil {
				t.Fatalf("incremental Fetch: %v", err)
			}
			if got := mirrorRef(t, c, repo, "refs/heads/main"); got != second {
				t.Errorf("main after incremental fetch = %q, want %s", got, second)
			}
			if got := mirrorRef(t, c, repo, "refs/heads/feature"); got != "" {
				t.Errorf("deleted branch still mirrored at %s: fetch did not prune", got)
			}
		})
	}
}

func TestFetchRejectsCloneURL(t *testing.T) {
	t.Parallel()
	c := newTestCache(t, Config{})
	for _, url := range []string{
		"ext::sh -c touch% /tmp/pwned",
		"ssh://host/repo.git",
		"git@github.com:owner/repo.git",
		"relative/path",
		"--upload-pack=touch /tmp/pwned",
		"https://user:hunter2@example.com/repo.git",
		"https://hunter2@127.0.0.1:1/repo.git", // a token as the user name (issue 7, item 10)
		"http://hunter2:@127.0.0.1:1/repo.git",
		"",
	} {
		err := c.Fetch(t.Context(), Repo{FullName: "o/r", CloneURL: url})
		if !errors.Is(err, ErrInvalidRepo) {
			t.Errorf("Fetch(%q) = %v, want ErrInvalidRepo", url, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the URL password: %v", err)
		}
	}
}

func TestMirrorDirStaysInside(t *testing.T) {
	t.Parallel()
	c := newTestCache(t, Config{})
	for _, name := range []string{
		"owner/name", "../../etc", "..", ".", "/etc/passwd", "a/../../b",
		"-rf", ".git", "x\x00y", "ünï/cødé", strings.Repeat("../", 100),
	} {
		dir, err := c.mirrorDir(Repo{FullName: name})
		if err != nil {
			t.Errorf("mirrorDir(%q): %v", name, err)
			continue
		}
		base := filepath.Base(dir)
		if filepath.Dir(dir) != c.dir || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "-") {
			t.Errorf("mirrorDir(%q) = %q, want a plain child of %q", name, dir, c.dir)
		}
	}
	if _, err := c.mirrorDir(Repo{}); !errors.Is(err, ErrInvalidRepo) {
		t.Errorf("empty FullName: err = %v, want ErrInvalidRepo", err)
	}
	if mirrorName("a/b") == mirrorName("a_b") {
		t.Error(`"a/b" and "a_b" share a mirror`)
	}
}

func TestFetchHostileNameStaysInDir(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "a")
	src.Commit("a")

	parent := t.TempDir()
	cacheDir := filepath.Join(parent, "x", "y", "cache")
	c := newTestCache(t, Config{Dir: cacheDir})
	if err := c.Fetch(t.Context(), Repo{FullName: "../../etc", CloneURL: src.Dir}); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	for dir, want := range map[string]string{parent: "x", filepath.Join(parent, "x"): "y", filepath.Join(parent, "x", "y"): "cache"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Name() != want {
			t.Errorf("%s holds %v, want only %q", dir, entries, want)
		}
	}
}

// TestFetchLockAcrossCaches uses two Caches on one Dir, as two processes
// would: their in-process locks are separate, so only flock stands between.
func TestFetchLockAcrossCaches(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "a")
	src.Commit("a")
	dir := t.TempDir()
	a := newTestCache(t, Config{Dir: dir})
	b := newTestCache(t, Config{Dir: dir})
	repo := Repo{FullName: "o/r", CloneURL: src.Dir}
	mirror, err := a.mirrorDir(repo)
	if err != nil {
		t.Fatal(err)
	}

	_, unlock, err := a.lockMirror(t.Context(), mirror)
	if err != nil {
		t.Fatal(err)
	}
	// Any deadline will do: with the lock held, Fetch can only wait. The error must say it was
	// waiting, or a broken lock could pass on a machine too slow to fetch within the deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := b.Fetch(ctx, repo); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for mirror lock") {
		t.Fatalf("Fetch while another cache holds the lock = %v, want DeadlineExceeded while waiting for the lock", err)
	}
	unlock()
	if err := b.Fetch(t.Context(), repo); err != nil {
		t.Fatalf("Fetch after unlock: %v", err)
	}
}

func TestConcurrentFetchesShareMirror(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "a")
	src.Commit("a")
	dir := t.TempDir()
	caches := []*Cache{newTestCache(t, Config{Dir: dir}), newTestCache(t, Config{Dir: dir})}
	repo := Repo{FullName: "o/r", CloneURL: fileURL(src)}

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := caches[i%2].Fetch(t.Context(), repo); err != nil {
				t.Errorf("Fetch %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	mirror, _ := caches[0].mirrorDir(repo)
	testenv.Git(t, mirror, "--git-dir="+mirror, "fsck", "--strict")
}

func TestFetchRemovesStaleLocks(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "a")
	src.Commit("a")
	c := newTestCache(t, Config{})
	repo := Repo{FullName: "o/r", CloneURL: src.Dir}
	if err := c.Fetch(t.Context(), repo); err != nil {
		t.Fatal(err)
	}
	// What a git killed mid-update leaves behind.
	mirror, _ := c.mirrorDir(repo)
	for _, name := range []string{"refs/heads/main.lock", "packed-refs.lock"} {
		if err := os.WriteFile(filepath.Join(mirror, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src.Write("a.txt", "b")
	want := src.Commit("b")
	if err := c.Fetch(t.Context(), repo); err != nil {
		t.Fatalf("Fetch with stale locks: %v", err)
	}
	if got := mirrorRef(t, c, repo, "refs/heads/main"); got != want {
		t.Errorf("main = %q, want %s", got, want)
	}
}
