package source

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/slipway-dev/slipway/internal/testenv"
)

func TestCheckoutOlderCommit(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "v1")
	src.Write("dir/b.txt", "b")
	old := src.Commit("old")
	src.Write("a.txt", "v2")
	src.Remove("dir/b.txt")
	head := src.Commit("head")

	c := newTestCache(t, Config{})
	repo := Repo{FullName: "o/r", CloneURL: fileURL(src)}
	if err := c.Fetch(t.Context(), repo); err != nil {
		t.Fatal(err)
	}

	co, err := c.Checkout(t.Context(), repo, strings.ToUpper(old))
	if err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	if co.SHA != old {
		t.Errorf("SHA = %q, want %q (normalized)", co.SHA, old)
	}
	if got := readFile(t, filepath.Join(co.Dir, "a.txt")); got != "v1" {
		t.Errorf("a.txt = %q, want v1", got)
	}
	if got := readFile(t, filepath.Join(co.Dir, "dir", "b.txt")); got != "b" {
		t.Errorf("dir/b.txt = %q, want b", got)
	}
	if _, err := os.Stat(filepath.Join(co.Dir, ".git")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".git in checkout: %v", err)
	}
	if err := co.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(co.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkout dir after Close: %v, want not exist", err)
	}
	if left := checkoutsLeft(c); len(left) != 0 {
		t.Errorf("work dir not empty after Close: %v", left)
	}

	co, err = c.Checkout(t.Context(), repo, head)
	if err != nil {
		t.Fatalf("Checkout head: %v", err)
	}
	defer co.Close()
	if got := readFile(t, filepath.Join(co.Dir, "a.txt")); got != "v2" {
		t.Errorf("a.txt at head = %q, want v2", got)
	}
	if _, err := os.Stat(filepath.Join(co.Dir, "dir", "b.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("deleted file present at head: %v", err)
	}
}

func TestCheckoutFetchesMissingCommit(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "1")
	src.Commit("1")
	c := newTestCache(t, Config{})
	repo := Repo{FullName: "o/r", CloneURL: src.Dir}
	if err := c.Fetch(t.Context(), repo); err != nil {
		t.Fatal(err)
	}
	src.Write("a.txt", "2")
	sha := src.Commit("2")

	co, err := c.Checkout(t.Context(), repo, sha)
	if err != nil {
		t.Fatalf("Checkout of a commit pushed after the last fetch: %v", err)
	}
	defer co.Close()
	if got := readFile(t, filepath.Join(co.Dir, "a.txt")); got != "2" {
		t.Errorf("a.txt = %q, want 2", got)
	}
}

func TestCheckoutUnknownCommit(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "1")
	src.Commit("1")
	c := newTestCache(t, Config{})
	repo := Repo{FullName: "o/r", CloneURL: src.Dir}
	_, err := c.Checkout(t.Context(), repo, strings.Repeat("ab", 20))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Checkout of unknown commit = %v, want ErrNotFound", err)
	}
	if left := checkoutsLeft(c); len(left) != 0 {
		t.Errorf("failed checkout left %v behind", left)
	}
}

// TestCheckoutConcurrent starts from an empty cache, so the goroutines also
// race to create the mirror.
func TestCheckoutConcurrent(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("version.txt", "one")
	src.Write("same.txt", "same")
	one := src.Commit("one")
	src.Write("version.txt", "two")
	src.Write("only-in-two.txt", "x")
	two := src.Commit("two")

	c := newTestCache(t, Config{})
	repo := Repo{FullName: "o/r", CloneURL: fileURL(src)}
	want := map[string]string{one: "one", two: "two"}

	var wg sync.WaitGroup
	for i := range 10 {
		sha := []string{one, two}[i%2]
		wg.Go(func() {
			co, err := c.Checkout(t.Context(), repo, sha)
			if err != nil {
				t.Errorf("Checkout %d: %v", i, err)
				return
			}
			defer co.Close()
			got, err := os.ReadFile(filepath.Join(co.Dir, "version.txt"))
			if err != nil || string(got) != want[sha] {
				t.Errorf("checkout %d of %s: version.txt = %q, %v; want %q", i, sha, got, err, want[sha])
			}
			_, err = os.Stat(filepath.Join(co.Dir, "only-in-two.txt"))
			if (err == nil) != (sha == two) {
				t.Errorf("checkout %d of %s: only-in-two.txt stat = %v", i, sha, err)
			}
		})
	}
	wg.Wait()
}

// TestInvalidSHARejectedBeforeGit runs git through a wrapper that logs each
// call, to prove a bad SHA never reaches git.
func TestInvalidSHARejectedBeforeGit(t *testing.T) {
	t.Parallel()
	realGit := testenv.RequireBinary(t, "git")
	dir := t.TempDir()
	calls := filepath.Join(dir, "calls")
	wrapper := filepath.Join(dir, "git")
	script := "#!/bin/sh\necho \"$*\" >> '" + calls + "'\nexec '" + realGit + "' \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, Config{GitBinary: wrapper})
	before := readFile(t, calls) // New ran "git version"

	good := strings.Repeat("a", 40)
	repo := Repo{FullName: "o/r", CloneURL: t.TempDir()}
	for _, bad := range []string{
		"--upload-pack=x", "HEAD", ";rm -rf /", "", "main", "refs/heads/main",
		strings.Repeat("g", 40), strings.Repeat("a", 39), strings.Repeat("a", 41),
		good[:39] + "\n", "-" + good[:39], good[:38] + "^{",
	} {
		_, err := c.Checkout(t.Context(), repo, bad)
		if !errors.Is(err, ErrInvalidSHA) {
			t.Errorf("Checkout(%q) = %v, want ErrInvalidSHA", bad, err)
		}
		_, err = c.ReadFile(t.Context(), repo, bad, "a.txt")
		if !errors.Is(err, ErrInvalidSHA) {
			t.Errorf("ReadFile(%q) = %v, want ErrInvalidSHA", bad, err)
		}
		_, _, err = c.ChangedPaths(t.Context(), repo, bad, good)
		if !errors.Is(err, ErrInvalidSHA) {
			t.Errorf("ChangedPaths(before=%q) = %v, want ErrInvalidSHA", bad, err)
		}
		_, _, err = c.ChangedPaths(t.Context(), repo, zeroSHA, bad)
		if !errors.Is(err, ErrInvalidSHA) {
			t.Errorf("ChangedPaths(after=%q) = %v, want ErrInvalidSHA", bad, err)
		}
	}
	if after := readFile(t, calls); after != before {
		t.Errorf("git ran for invalid SHAs:\n%s", strings.TrimPrefix(after, before))
	}
}

// checkoutsLeft lists the checkouts in c's work dir.
func checkoutsLeft(c *Cache) []string {
	left, _ := filepath.Glob(filepath.Join(c.work.Path(), "checkout-*"))
	return left
}

// TestNewSweepsDeadCheckouts: a server killed mid-deployment leaves its checkout (the
// repository's files) in the work dir; the next server's New removes it, and keeps the
// checkouts of a server still running on the same host.
func TestNewSweepsDeadCheckouts(t *testing.T) {
	t.Parallel()
	src := testenv.NewGitRepo(t)
	src.Write("secret.txt", "company source")
	sha := src.Commit("one")
	work := filepath.Join(t.TempDir(), "work")
	repo := Repo{FullName: "o/r", CloneURL: src.Dir}

	live := newTestCache(t, Config{WorkDir: work})
	co, err := live.Checkout(t.Context(), repo, sha)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Close()
	// What a killed server left: a checkout as this version lays it out and as the one before did.
	dead := []string{
		filepath.Join(work, "slipway-checkout-1234", "src", "secret.txt"),
		filepath.Join(work, "slipway-dead", "checkout-99", "src", "secret.txt"),
	}
	for _, p := range dead {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("company source"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(work, "slipway-dead", "lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(work, "not-slipway")
	if err := os.Mkdir(mine, 0o700); err != nil {
		t.Fatal(err)
	}

	c := newTestCache(t, Config{WorkDir: work})
	// The live cache's lock is held by a file its state dir keeps open: keep the cache reachable
	// until the sweep has run, or the collector may close the file and release the lock.
	runtime.KeepAlive(live)
	for _, p := range dead {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left by a dead server is still there (%v)", p, err)
		}
	}
	if got := readFile(t, filepath.Join(co.Dir, "secret.txt")); got != "company source" {
		t.Errorf("a running server's checkout was touched: %q", got)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a directory Slipway did not make was removed: %v", err)
	}

	co2, err := c.Checkout(t.Context(), repo, sha)
	if err != nil {
		t.Fatal(err)
	}
	defer co2.Close()
	for _, d := range []string{work, filepath.Dir(co2.Dir), co2.Dir} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v; want 0700", d, fi.Mode().Perm(), err)
		}
	}
}

// TestCheckoutCancelled: a checkout whose context ends while git writes the files (a cancelled
// deployment, the stage's timeout) leaves nothing behind.
func TestCheckoutCancelled(t *testing.T) {
	t.Parallel()
	realGit := testenv.RequireBinary(t, "git")
	src := testenv.NewGitRepo(t)
	src.Write("a.txt", "1")
	sha := src.Commit("1")
	dir := t.TempDir()
	started := filepath.Join(dir, "started")
	if err := syscall.Mkfifo(started, 0o600); err != nil {
		t.Fatal(err)
	}
	// git that, asked to write the files, says so and hangs.
	wrapper := filepath.Join(dir, "git")
	script := "#!/bin/sh\nfor a in \"$@\"; do if [ \"$a\" = read-tree ]; then echo > '" + started + "'; exec sleep 600; fi; done\n" +
		"exec '" + realGit + "' \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c := newTestCache(t, Config{GitBinary: wrapper})
	repo := Repo{FullName: "o/r", CloneURL: src.Dir}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.Open(started) // returns once the wrapper opens it to write
		if err != nil {
			t.Error(err)
			return
		}
		f.Close()
		cancel()
	}()
	_, err := c.Checkout(ctx, repo, sha)
	if err == nil {
		t.Fatal("Checkout succeeded")
	}
	if w, err := os.OpenFile(started, os.O_RDWR, 0); err == nil { // frees the reader, if git never came
		w.Close()
	}
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Checkout = %v, want it cancelled", err)
	}
	if left := checkoutsLeft(c); len(left) != 0 {
		t.Errorf("cancelled checkout left %v behind", left)
	}
}
