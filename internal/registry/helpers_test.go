package registry

import (
	"os"
	"path/filepath"
	"testing"
)

// checkDockerConfig asserts that dir is private and holds exactly config.json with want.
func checkDockerConfig(t *testing.T, dir, want string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "config.json" {
		t.Errorf("%s holds %v, want only config.json", dir, entries)
	}
	got, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("config.json = %s, want %s", got, want)
	}
}
