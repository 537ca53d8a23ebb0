package pipeline

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
)

func TestCheckInRepo(t *testing.T) {
	outside := t.TempDir()
	mustWrite(t, filepath.Join(outside, "Dockerfile"), "FROM scratch\n")

	tests := []struct {
		name  string
		setup func(t *testing.T, repo string)
		svc   string // the service's context and dockerfile lines
		want  string // "" when the repo passes; else "line:path: fragment"
	}{
		{"ok", func(t *testing.T, repo string) {
			mustWrite(t, filepath.Join(repo, "services/api/Dockerfile"), "FROM scratch\n")
		}, "context: services/api", ""},
		{"default context and dockerfile", func(t *testing.T, repo string) {
			mustWrite(t, filepath.Join(repo, "Dockerfile"), "FROM scratch\n")
		}, "", ""},
		{"symlinks inside the repo are fine", func(t *testing.T, repo string) {
			mustWrite(t, filepath.Join(repo, "real/Dockerfile"), "FROM scratch\n")
			mustSymlink(t, "real", filepath.Join(repo, "link"))
		}, "context: link", ""},
		{"missing dockerfile", func(t *testing.T, repo string) {
			mustMkdir(t, filepath.Join(repo, "services/api"))
		}, "context: services/api", `2:services.api.dockerfile: "services/api/Dockerfile" does not exist`},
		{"missing context", func(t *testing.T, repo string) {}, "context: nope\n    dockerfile: nope/Dockerfile", `4:services.api.context: "nope" does not exist`},
		{"context symlink out of the repo", func(t *testing.T, repo string) {
			mustSymlink(t, outside, filepath.Join(repo, "ctx"))
		}, "context: ctx", `4:services.api.context: "ctx" resolves outside the repository`},
		{"dockerfile symlink out of the repo", func(t *testing.T, repo string) {
			mustSymlink(t, filepath.Join(outside, "Dockerfile"), filepath.Join(repo, "Dockerfile"))
		}, "", `2:services.api.dockerfile: "Dockerfile" resolves outside the repository`},
		{"dockerfile symlink to /etc/passwd", func(t *testing.T, repo string) {
			mustSymlink(t, "/etc/passwd", filepath.Join(repo, "Dockerfile"))
		}, "", `"Dockerfile" resolves outside the repository`},
		{"relative symlink climbing out", func(t *testing.T, repo string) {
			mustMkdir(t, filepath.Join(repo, "a"))
			rel, err := filepath.Rel(filepath.Join(repo, "a"), outside)
			if err != nil {
				t.Fatal(err)
			}
			mustSymlink(t, rel, filepath.Join(repo, "a/b"))
		}, "context: a/b", `"a/b" resolves outside the repository`},
		{"intermediate directory symlink", func(t *testing.T, repo string) {
			mustSymlink(t, outside, filepath.Join(repo, "dir"))
			mustWrite(t, filepath.Join(repo, "Dockerfile"), "FROM scratch\n")
		}, "dockerfile: dir/Dockerfile", `4:services.api.dockerfile: "dir/Dockerfile" resolves outside`},
		{"dangling symlink", func(t *testing.T, repo string) {
			mustSymlink(t, "nonexistent/x", filepath.Join(repo, "Dockerfile"))
		}, "", `"Dockerfile" does not exist`},
		{"absolute symlink, even dangling", func(t *testing.T, repo string) {
			mustSymlink(t, "/nonexistent/x", filepath.Join(repo, "Dockerfile"))
		}, "", `"Dockerfile" resolves outside the repository`},
		{"dockerfile symlink to /dev/zero", func(t *testing.T, repo string) {
			mustSymlink(t, "/dev/zero", filepath.Join(repo, "Dockerfile"))
		}, "", `2:services.api.dockerfile: "Dockerfile" resolves outside the repository`},
		{"dockerfile is a FIFO", func(t *testing.T, repo string) {
			// Opening it would block until a writer came: the check must not open it.
			if err := syscall.Mkfifo(filepath.Join(repo, "Dockerfile"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "", `2:services.api.dockerfile: "Dockerfile" is not a regular file`},
		{"dockerfile symlink to a FIFO", func(t *testing.T, repo string) {
			if err := syscall.Mkfifo(filepath.Join(repo, "fifo"), 0o644); err != nil {
				t.Fatal(err)
			}
			mustSymlink(t, "fifo", filepath.Join(repo, "Dockerfile"))
		}, "", `"Dockerfile" is not a regular file`},
		{"dockerfile is a device node", func(t *testing.T, repo string) {
			if os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			if err := syscall.Mknod(filepath.Join(repo, "Dockerfile"), syscall.S_IFCHR|0o666, 1<<8|5); err != nil {
				t.Fatal(err)
			}
		}, "", `"Dockerfile" is not a regular file`},
		{"context is a socket", func(t *testing.T, repo string) {
			l, err := net.Listen("unix", filepath.Join(repo, "sock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			mustWrite(t, filepath.Join(repo, "Dockerfile"), "FROM scratch\n")
		}, "context: sock\n    dockerfile: Dockerfile", `4:services.api.context: "sock" is not a directory`},
		{"symlink loop", func(t *testing.T, repo string) {
			mustSymlink(t, "loop", filepath.Join(repo, "loop"))
		}, "context: loop", `4:services.api.context: "loop" cannot be resolved`},
		{"context is a file", func(t *testing.T, repo string) {
			mustWrite(t, filepath.Join(repo, "file"), "x")
			mustWrite(t, filepath.Join(repo, "Dockerfile"), "x")
		}, "context: file\n    dockerfile: Dockerfile", `4:services.api.context: "file" is not a directory`},
		{"dockerfile is a directory", func(t *testing.T, repo string) {
			mustMkdir(t, filepath.Join(repo, "Dockerfile"))
		}, "", `"Dockerfile" is not a regular file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repo := t.TempDir()
			tt.setup(t, repo)
			src := "services:\n  api:\n    image: x/api\n    " + tt.svc + "\n    environments: {p: {branch: main, swarm: {service: a}}}\n"
			f, err := Parse(".slipway.yml", []byte(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			err = f.CheckInRepo(repo)
			if tt.want == "" {
				if err != nil {
					t.Errorf("CheckInRepo: %v", err)
				}
				return
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("CheckInRepo = %v, want an ErrorList", err)
			}
			if !containsProblem(list, tt.want) {
				t.Errorf("CheckInRepo =\n%v\nwant %q", err, tt.want)
			}
			for _, e := range list {
				if e.Line == 0 || !strings.HasPrefix(e.Path, "services.api.") || e.File != ".slipway.yml" {
					t.Errorf("problem does not name file, line and key: %q", e.Error())
				}
				if strings.Contains(e.Error(), repo) {
					t.Errorf("problem leaks the checkout directory: %q", e.Error())
				}
			}
		})
	}
}

// TestCheckBuild is the check a deployment runs on its checkout before it builds (the spec comes
// from the database, not from a parse).
func TestCheckBuild(t *testing.T) {
	repo := t.TempDir()
	mustWrite(t, filepath.Join(repo, "svc/Dockerfile"), "FROM scratch\n")
	mustSymlink(t, "/dev/zero", filepath.Join(repo, "svc/zero.Dockerfile"))
	if err := syscall.Mkfifo(filepath.Join(repo, "svc/fifo.Dockerfile"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		build deploy.Build
		want  string
	}{
		{deploy.Build{Context: "svc"}, ""},
		{deploy.Build{Context: "svc", Dockerfile: "svc/zero.Dockerfile"}, `services.api.dockerfile: "svc/zero.Dockerfile" resolves outside the repository`},
		{deploy.Build{Context: "svc", Dockerfile: "svc/fifo.Dockerfile"}, `services.api.dockerfile: "svc/fifo.Dockerfile" is not a regular file`},
		{deploy.Build{Context: "svc/Dockerfile"}, `services.api.context: "svc/Dockerfile" is not a directory`},
	} {
		err := CheckBuild(repo, "api", tt.build)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("CheckBuild(%+v) = %v, want %q", tt.build, err, tt.want)
		}
	}
}

func TestCheckInRepoWithoutParse(t *testing.T) {
	repo := t.TempDir()
	f := &File{Services: []Service{{Name: "api", Dockerfile: "../../etc/passwd"}}}
	err := f.CheckInRepo(repo)
	if err == nil || !strings.Contains(err.Error(), "services.api.dockerfile: \"../../etc/passwd\" must stay inside the repository") {
		t.Errorf("CheckInRepo = %v", err)
	}
	if err := f.CheckInRepo(filepath.Join(repo, "missing")); err == nil || !strings.Contains(err.Error(), "resolving repository checkout") {
		t.Errorf("CheckInRepo of a missing root = %v", err)
	}
}

func TestCheckInRepoRootIsSymlink(t *testing.T) {
	real := t.TempDir()
	mustWrite(t, filepath.Join(real, "Dockerfile"), "FROM scratch\n")
	link := filepath.Join(t.TempDir(), "repo")
	mustSymlink(t, real, link)
	f := &File{Services: []Service{{Name: "api"}}}
	if err := f.CheckInRepo(link); err != nil {
		t.Errorf("CheckInRepo through a symlinked root: %v", err)
	}
}

func mustWrite(t *testing.T, name, data string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(name))
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, name string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(name))
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}
