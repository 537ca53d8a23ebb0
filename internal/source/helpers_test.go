package source

import (
	"log/slog"
	"os"
	"testing"

	"github.com/slipway-dev/slipway/internal/testenv"
)

// testRepo is a real non-bare repository to fetch from.
type testRepo = testenv.GitRepo

func fileURL(r *testRepo) string { return "file://" + r.Dir }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newTestCache(t *testing.T, cfg Config) *Cache {
	t.Helper()
	testenv.RequireBinary(t, "git")
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.WorkDir == "" {
		cfg.WorkDir = t.TempDir()
	}
	c, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// mirrorRef reads a ref straight from the mirror, bypassing the Cache.
func mirrorRef(t *testing.T, c *Cache, repo Repo, ref string) string {
	t.Helper()
	dir, err := c.mirrorDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Git(t, dir, "--git-dir="+dir, "for-each-ref", "--format=%(objectname)", ref)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
