package imagebuild

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// checkout writes a small monorepo: the service's context is svc/, its Dockerfile lives in
// docker/ outside the context.
func checkout(t *testing.T) (string, deploy.BuildRequest) {
	t.Helper()
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "docker", "svc.Dockerfile"), "FROM base\nCOPY . /app\n", 0o644)
	mustWrite(t, filepath.Join(dir, "svc", "main.go"), "package main\n", 0o644)
	mustWrite(t, filepath.Join(dir, "svc", "run.sh"), "#!/bin/sh\n", 0o755)
	mustWrite(t, filepath.Join(dir, "svc", "pkg", "lib.go"), "package pkg\n", 0o644)
	mustWrite(t, filepath.Join(dir, "svc", "tmp", "cache.bin"), "cache\n", 0o644)
	mustWrite(t, filepath.Join(dir, "svc", "debug.log"), "log\n", 0o644)
	mustWrite(t, filepath.Join(dir, "svc", ".dockerignore"), "# build junk\ntmp\n*.log\n", 0o644)
	mustWrite(t, filepath.Join(dir, "other", "README"), "not in the context\n", 0o644)
	mustSymlink(t, "pkg/lib.go", filepath.Join(dir, "svc", "link"))
	return dir, deploy.BuildRequest{
		Dir:        dir,
		Context:    "svc",
		Dockerfile: "docker/svc.Dockerfile",
		BuildArgs:  map[string]string{"A": "1", "B": "2"},
		Stage:      "prod",
		Tags:       []string{"reg/app:1"},
		Labels:     map[string]string{"revision": "abc"},
	}
}

func TestInputsHash(t *testing.T) {
	_, base := checkout(t)
	want, err := InputsHash(base)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(want) {
		t.Fatalf("hash %q is not 24 hex characters", want)
	}

	tests := []struct {
		name   string
		change func(t *testing.T, dir string, req *deploy.BuildRequest)
		same   bool
	}{
		{"fresh identical checkout elsewhere", func(*testing.T, string, *deploy.BuildRequest) {}, true},
		{"mtime only", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			old := time.Now().Add(-time.Hour)
			if err := os.Chtimes(filepath.Join(dir, "svc", "main.go"), old, old); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"labels and tags", func(_ *testing.T, _ string, req *deploy.BuildRequest) {
			req.Labels = map[string]string{"revision": "def"}
			req.Tags = []string{"reg/app:2"}
		}, true},
		{"file outside the context", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustWrite(t, filepath.Join(dir, "other", "README"), "changed\n", 0o644)
		}, true},
		{"ignored directory", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustWrite(t, filepath.Join(dir, "svc", "tmp", "cache.bin"), "other cache\n", 0o644)
		}, true},
		{"ignored file pattern", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustWrite(t, filepath.Join(dir, "svc", "new.log"), "x\n", 0o644)
		}, true},
		{"file content", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustWrite(t, filepath.Join(dir, "svc", "pkg", "lib.go"), "package pkg // v2\n", 0o644)
		}, false},
		{"file renamed", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			if err := os.Rename(filepath.Join(dir, "svc", "main.go"), filepath.Join(dir, "svc", "app.go")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"empty file added", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustWrite(t, filepath.Join(dir, "svc", "empty"), "", 0o644)
		}, false},
		{"empty dir added", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			if err := os.Mkdir(filepath.Join(dir, "svc", "data"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"mode bits", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			if err := os.Chmod(filepath.Join(dir, "svc", "main.go"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"symlink target", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			link := filepath.Join(dir, "svc", "link")
			os.Remove(link)
			mustSymlink(t, "main.go", link)
		}, false},
		{"dockerfile outside the context", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustWrite(t, filepath.Join(dir, "docker", "svc.Dockerfile"), "FROM base\nCOPY . /srv\n", 0o644)
		}, false},
		{".dockerignore itself", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustWrite(t, filepath.Join(dir, "svc", ".dockerignore"), "tmp\n*.log\n", 0o644)
		}, false},
		{"ignore exceptions make every file count", func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustWrite(t, filepath.Join(dir, "svc", ".dockerignore"), "# build junk\ntmp\n*.log\n!keep.log\n", 0o644)
		}, false},
		{"build arg value", func(_ *testing.T, _ string, req *deploy.BuildRequest) {
			req.BuildArgs = map[string]string{"A": "1", "B": "3"}
		}, false},
		{"build arg added", func(_ *testing.T, _ string, req *deploy.BuildRequest) {
			req.BuildArgs = map[string]string{"A": "1", "B": "2", "C": ""}
		}, false},
		{"build arg key and value shifted", func(_ *testing.T, _ string, req *deploy.BuildRequest) {
			req.BuildArgs = map[string]string{"A": "1B", "": "2"}
		}, false},
		{"target", func(_ *testing.T, _ string, req *deploy.BuildRequest) {
			req.Stage = ""
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, req := checkout(t)
			tt.change(t, dir, &req)
			got, err := InputsHash(req)
			if err != nil {
				t.Fatal(err)
			}
			if (got == want) != tt.same {
				t.Errorf("hash %s, base %s: want same = %v", got, want, tt.same)
			}
		})
	}
}

func TestInputsHashRefuses(t *testing.T) {
	tests := []struct {
		name    string
		change  func(t *testing.T, dir string, req *deploy.BuildRequest)
		wantErr string
	}{
		{"dockerfile symlink leaving the checkout", func(t *testing.T, dir string, req *deploy.BuildRequest) {
			mustSymlink(t, "/etc/passwd", filepath.Join(dir, "evil.Dockerfile"))
			req.Dockerfile = "evil.Dockerfile"
		}, "outside the checkout"},
		{"context symlink leaving the checkout", func(t *testing.T, dir string, req *deploy.BuildRequest) {
			mustSymlink(t, "/etc", filepath.Join(dir, "etc"))
			req.Context = "etc"
		}, "outside the checkout"},
		{"dotdot context", func(_ *testing.T, _ string, req *deploy.BuildRequest) {
			req.Context = "../.."
		}, "not a path inside"},
		{"missing dockerfile", func(_ *testing.T, _ string, req *deploy.BuildRequest) {
			req.Dockerfile = "nope/Dockerfile"
		}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, req := checkout(t)
			tt.change(t, dir, &req)
			if _, err := InputsHash(req); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// A symlink inside the context that points outside is hashed as its text, never followed.
func TestInputsHashDoesNotFollowLinksInContext(t *testing.T) {
	dir, req := checkout(t)
	outside := filepath.Join(t.TempDir(), "secret")
	mustWrite(t, outside, "one\n", 0o600)
	mustSymlink(t, outside, filepath.Join(dir, "svc", "outside"))
	h1, err := InputsHash(req)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, outside, "two\n", 0o600)
	h2, err := InputsHash(req)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Error("hash changed with the content of a file outside the checkout")
	}
}

func TestParseIgnore(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		simple   bool
		excluded []string
		included []string
	}{
		{"dirs and globs", "# c\n\n node_modules \n/build\n*.tmp\ndocs/*.md\n", true,
			[]string{"node_modules", "node_modules/a/b.js", "build/x", "a.tmp", "docs/a.md", "docs/a.md/x"},
			[]string{"src/a.tmp", "src/node_modules", "docs/sub/a.md", "buildx", "Dockerfile"}},
		{"exception", "*.md\n!README.md\n", false, nil, []string{"a.md", "README.md"}},
		{"double star", "**/*.go\n", false, nil, []string{"a.go"}},
		{"parent", "../x\n", false, nil, nil},
		{"bad pattern", "[\n", false, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseIgnore([]byte(tt.file))
			if (r != nil) != tt.simple {
				t.Fatalf("parseIgnore = %v, want rules: %v", r, tt.simple)
			}
			for _, p := range tt.excluded {
				if !r.excludes(p) {
					t.Errorf("%s not excluded", p)
				}
			}
			for _, p := range tt.included {
				if r.excludes(p) {
					t.Errorf("%s excluded", p)
				}
			}
		})
	}
}
