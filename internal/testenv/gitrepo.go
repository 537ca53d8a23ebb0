package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRepo is a real, non-bare repository a test commits to, on branch main.
type GitRepo struct {
	t   testing.TB
	Dir string
}

// NewGitRepo makes an empty repository in a temp dir of t's.
func NewGitRepo(t testing.TB) *GitRepo {
	t.Helper()
	RequireBinary(t, "git")
	r := &GitRepo{t: t, Dir: filepath.Join(t.TempDir(), "repo")}
	if err := os.Mkdir(r.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.Git("init", "--quiet")
	return r
}

// Git runs git in the repository and returns its trimmed standard output.
func (r *GitRepo) Git(args ...string) string {
	r.t.Helper()
	return Git(r.t, r.Dir, args...)
}

// Git runs git in dir, isolated from the host's configuration, and returns its trimmed standard
// output; it fails t when git does.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	args = append([]string{
		"-c", "user.name=Ada", "-c", "user.email=ada@example.com",
		"-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false",
	}, args...)
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = GitEnv(dir)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// GitEnv keeps the host's git configuration and home out of a test's git runs.
func GitEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull)
}

// Write writes a file of the work tree, making its directories.
func (r *GitRepo) Write(path, content string) {
	r.t.Helper()
	full := filepath.Join(r.Dir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// Remove removes a file of the work tree.
func (r *GitRepo) Remove(path string) {
	r.t.Helper()
	if err := os.Remove(filepath.Join(r.Dir, filepath.FromSlash(path))); err != nil {
		r.t.Fatal(err)
	}
}

// Commit records every change of the work tree (an empty commit if none) and returns its SHA.
func (r *GitRepo) Commit(msg string) string {
	r.t.Helper()
	r.Git("add", "--all")
	r.Git("commit", "--quiet", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}

// CommitFiles writes files and commits them.
func (r *GitRepo) CommitFiles(msg string, files map[string]string) string {
	r.t.Helper()
	for p, c := range files {
		r.Write(p, c)
	}
	return r.Commit(msg)
}
