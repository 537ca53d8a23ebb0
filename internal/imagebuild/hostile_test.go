package imagebuild

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/repofs"
)

// TestInputsHashHostileCheckout feeds InputsHash the files a repository can use against the
// server that hashes its build inputs. Each must fail at once with a reason that names the file:
// no read without limit (which exhausted the server's memory), no blocking open, no hour spent
// hashing zeros.
func TestInputsHashHostileCheckout(t *testing.T) {
	tests := []struct {
		name    string
		root    bool // needs mknod
		change  func(t *testing.T, dir string, req *deploy.BuildRequest)
		wantErr string
	}{
		{".dockerignore symlink to /dev/zero", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			replaceWithSymlink(t, "/dev/zero", filepath.Join(dir, "svc", ".dockerignore"))
		}, `"svc/.dockerignore" leads outside the checkout`},
		{".dockerignore relative symlink climbing out", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			replaceWithSymlink(t, "../../../../../../../../../../../../../dev/zero", filepath.Join(dir, "svc", ".dockerignore"))
		}, `"svc/.dockerignore" leads outside the checkout`},
		{".dockerignore is a FIFO", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			replaceWithFIFO(t, filepath.Join(dir, "svc", ".dockerignore"))
		}, `"svc/.dockerignore" is a named pipe`},
		{".dockerignore is a device node", true, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			replaceWithDevZero(t, filepath.Join(dir, "svc", ".dockerignore"))
		}, `"svc/.dockerignore" is a device`},
		{".dockerignore symlink to a FIFO inside", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustFIFO(t, filepath.Join(dir, "fifo"))
			replaceWithSymlink(t, "../fifo", filepath.Join(dir, "svc", ".dockerignore"))
		}, `"svc/.dockerignore" is a named pipe`},
		{".dockerignore far too large", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			sparse(t, filepath.Join(dir, "svc", ".dockerignore"), 1<<40)
		}, `"svc/.dockerignore" is larger than`},
		{"dockerfile-specific ignore symlink to /dev/zero", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustSymlink(t, "/dev/zero", filepath.Join(dir, "docker", "svc.Dockerfile.dockerignore"))
		}, `"docker/svc.Dockerfile.dockerignore" leads outside the checkout`},
		{"dockerfile-specific ignore is a FIFO", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustFIFO(t, filepath.Join(dir, "docker", "svc.Dockerfile.dockerignore"))
		}, `"docker/svc.Dockerfile.dockerignore" is a named pipe`},
		{"dockerfile of 1 TiB (sparse)", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			sparse(t, filepath.Join(dir, "docker", "svc.Dockerfile"), 1<<40)
		}, `"docker/svc.Dockerfile" is larger than`},
		{"dockerfile is a FIFO", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			replaceWithFIFO(t, filepath.Join(dir, "docker", "svc.Dockerfile"))
		}, `"docker/svc.Dockerfile" is a named pipe`},
		{"dockerfile symlink to /dev/zero", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			replaceWithSymlink(t, "/dev/zero", filepath.Join(dir, "docker", "svc.Dockerfile"))
		}, `"docker/svc.Dockerfile" leads outside the checkout`},
		{"context file of 1 TiB (sparse)", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			sparse(t, filepath.Join(dir, "svc", "model.bin"), 1<<40)
		}, `"svc" holds more than 2147483648 bytes of files (the limit, reached at "svc/model.bin"`},
		{"FIFO in the context", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			mustFIFO(t, filepath.Join(dir, "svc", "pkg", "fifo"))
		}, `"svc/pkg/fifo" is a named pipe`},
		{"device node in the context", true, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			replaceWithDevZero(t, filepath.Join(dir, "svc", "pkg", "zero"))
		}, `"svc/pkg/zero" is a device`},
		{"socket in the context", false, func(t *testing.T, dir string, _ *deploy.BuildRequest) {
			l, err := net.Listen("unix", filepath.Join(dir, "svc", "sock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, `"svc/sock" is a socket`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			dir, req := checkout(t)
			tt.change(t, dir, &req)
			_, err := InputsHash(req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to say %q", err, tt.wantErr)
			}
		})
	}
}

// TestHasherLimits: a context of more files or bytes than the limits fails with the reason;
// what .dockerignore excludes is never listed, so it does not count.
func TestHasherLimits(t *testing.T) {
	dir, req := checkout(t)
	for i := range 100 {
		mustWrite(t, filepath.Join(dir, "svc", "tmp", fmt.Sprint(i)), "x", 0o644) // svc/.dockerignore has tmp
	}
	small := Hasher{Limits: repofs.Limits{MaxEntries: 50, MaxBytes: 1000}}
	if _, err := small.InputsHash(req); err != nil {
		t.Fatalf("ignored files counted: %v", err)
	}
	for i := range 100 {
		mustWrite(t, filepath.Join(dir, "svc", "many", fmt.Sprint(i)), "x", 0o644)
	}
	if _, err := small.InputsHash(req); !errors.Is(err, repofs.ErrTooMany) ||
		!strings.Contains(err.Error(), `"svc" holds more than 50 files and directories`) {
		t.Errorf("err = %v, want too many files", err)
	}
	mustWrite(t, filepath.Join(dir, "svc", "big"), strings.Repeat("x", 1001), 0o644)
	small.Limits.MaxEntries = 0
	if _, err := small.InputsHash(req); !errors.Is(err, repofs.ErrTooLarge) ||
		!strings.Contains(err.Error(), `"svc" holds more than 1000 bytes of files`) {
		t.Errorf("err = %v, want too many bytes", err)
	}
}

// Symlinks in the context are hashed as their text, whatever they point to: docker sends them
// as links too.
func TestInputsHashContextLinksNotFollowed(t *testing.T) {
	dir, req := checkout(t)
	mustSymlink(t, "/dev/zero", filepath.Join(dir, "svc", "zero"))
	mustSymlink(t, "../../../../../../../../etc/shadow", filepath.Join(dir, "svc", "shadow"))
	mustFIFO(t, filepath.Join(dir, "other", "fifo"))
	mustSymlink(t, "../other/fifo", filepath.Join(dir, "svc", "fifo"))
	if _, err := InputsHash(req); err != nil {
		t.Fatal(err)
	}
}

func replaceWithSymlink(t *testing.T, target, path string) {
	t.Helper()
	os.Remove(path)
	mustSymlink(t, target, path)
}

func replaceWithFIFO(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	mustFIFO(t, path)
}

func mustFIFO(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceWithDevZero makes path a character device with /dev/zero's numbers (1, 5).
func replaceWithDevZero(t *testing.T, path string) {
	t.Helper()
	os.Remove(path)
	if err := syscall.Mknod(path, syscall.S_IFCHR|0o666, 1<<8|5); err != nil {
		t.Fatal(err)
	}
}

// sparse makes path a file of size bytes that takes no disk space.
func sparse(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}
