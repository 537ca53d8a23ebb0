package repofs

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// tree is a checkout with every kind of file a repository (or a hostile one) can hold, and a
// secret next to it.
func tree(t *testing.T) (checkout, outside string) {
	t.Helper()
	base := t.TempDir()
	checkout = filepath.Join(base, "co")
	outside = filepath.Join(base, "secret")
	write(t, outside, "the server's secret")
	write(t, filepath.Join(checkout, "file"), "content")
	write(t, filepath.Join(checkout, "dir", "nested"), "nested")
	symlink(t, "file", filepath.Join(checkout, "link"))
	symlink(t, "../file", filepath.Join(checkout, "dir", "uplink"))
	symlink(t, "dir", filepath.Join(checkout, "dirlink"))
	symlink(t, "../secret", filepath.Join(checkout, "escape"))
	symlink(t, outside, filepath.Join(checkout, "absolute"))
	symlink(t, "/dev/zero", filepath.Join(checkout, "zero"))
	symlink(t, filepath.Dir(outside), filepath.Join(checkout, "outdir"))
	symlink(t, "missing", filepath.Join(checkout, "dangling"))
	symlink(t, "loop", filepath.Join(checkout, "loop"))
	fifo(t, filepath.Join(checkout, "fifo"))
	symlink(t, "fifo", filepath.Join(checkout, "fifolink"))
	l, err := net.Listen("unix", filepath.Join(checkout, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if os.Geteuid() == 0 {
		// /dev/zero's numbers: a device node a repository cannot hold but a local user could make.
		if err := syscall.Mknod(filepath.Join(checkout, "dev"), syscall.S_IFCHR|0o666, 1<<8|5); err != nil {
			t.Fatal(err)
		}
	}
	return checkout, outside
}

func TestOpen(t *testing.T) {
	checkout, _ := tree(t)
	d, err := Open(checkout)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	tests := []struct {
		name    string
		want    string // content, when wantErr is nil
		wantErr error
		msg     string
	}{
		{name: "file", want: "content"},
		{name: "dir/nested", want: "nested"},
		{name: "./dir/../file", want: "content"},
		{name: "link", want: "content"},
		{name: "dir/uplink", want: "content"},
		{name: "dirlink/nested", want: "nested"},
		{name: "escape", wantErr: ErrOutside, msg: `"escape" leads outside the checkout`},
		{name: "absolute", wantErr: ErrOutside, msg: `"absolute" leads outside the checkout`},
		{name: "zero", wantErr: ErrOutside, msg: `"zero" leads outside the checkout`},
		{name: "outdir/secret", wantErr: ErrOutside},
		{name: "../secret", wantErr: ErrOutside, msg: `"../secret" is not a path inside the checkout`},
		{name: "dir/../../secret", wantErr: ErrOutside},
		{name: "/etc/passwd", wantErr: ErrOutside},
		{name: "fifo", wantErr: ErrNotRegular, msg: `"fifo" is a named pipe, not a regular file`},
		{name: "fifolink", wantErr: ErrNotRegular, msg: `"fifolink" is a named pipe`},
		{name: "sock", wantErr: ErrNotRegular, msg: `"sock" is a socket`},
		{name: "dev", wantErr: ErrNotRegular, msg: `"dev" is a device`},
		{name: "dir", wantErr: ErrNotRegular, msg: `"dir" is a directory`},
		{name: "dangling", wantErr: fs.ErrNotExist},
		{name: "missing", wantErr: fs.ErrNotExist},
		{name: "loop", wantErr: syscall.ELOOP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "dev" && os.Geteuid() != 0 {
				t.Skip("mknod needs root")
			}
			// A FIFO opened for reading blocks until a writer comes: if this returns, it did not.
			got, err := d.ReadFile(tt.name, 1<<20)
			if tt.wantErr == nil {
				if err != nil || string(got) != tt.want {
					t.Fatalf("ReadFile = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadFile = %q, %v; want %v", got, err, tt.wantErr)
			}
			if tt.msg != "" && !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if strings.Contains(err.Error(), checkout) {
				t.Errorf("error %q shows the server's directory", err)
			}
		})
	}
}

// TestOpenTooLarge refuses a file above the limit by its size, before reading any of it: the file
// here is a terabyte (sparse), which a read would never finish.
func TestOpenTooLarge(t *testing.T) {
	checkout := t.TempDir()
	for name, size := range map[string]int64{"huge": 1 << 40, "limit": 1 << 10, "over": 1<<10 + 1} {
		f, err := os.Create(filepath.Join(checkout, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	symlink(t, "huge", filepath.Join(checkout, "hugelink"))
	d, err := Open(checkout)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, name := range []string{"huge", "hugelink", "over"} {
		_, err := d.ReadFile(name, 1<<10)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "is larger than the limit of 1024 bytes") {
			t.Errorf("ReadFile(%s) = %v, want ErrTooLarge", name, err)
		}
	}
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Errorf("refusing allocated %d bytes", n)
	}
	if got, err := d.ReadFile("limit", 1<<10); err != nil || len(got) != 1<<10 {
		t.Errorf("ReadFile(limit) = %d bytes, %v", len(got), err)
	}
}

// A file that grows after it was opened is cut at the limit it was opened with.
func TestFileGrows(t *testing.T) {
	checkout := t.TempDir()
	write(t, filepath.Join(checkout, "f"), "1234")
	d, err := Open(checkout)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := d.Open("f", 6)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write(t, filepath.Join(checkout, "f"), "1234567890")
	got, err := io.ReadAll(f)
	if !errors.Is(err, ErrTooLarge) || string(got) != "123456" {
		t.Errorf("ReadAll = %q, %v; want the first 6 bytes and ErrTooLarge", got, err)
	}
}

func TestStatAndRealPath(t *testing.T) {
	checkout, _ := tree(t)
	d, err := Open(checkout)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	real, _ := filepath.EvalSymlinks(checkout)
	for _, tt := range []struct {
		name    string
		want    string // RealPath relative to the checkout
		wantErr error
	}{
		{name: ".", want: "."},
		{name: "dirlink", want: "dir"},
		{name: "dirlink/uplink", want: "file"},
		{name: "fifo", want: "fifo"}, // Stat and RealPath name things; opening is another matter
		{name: "outdir", wantErr: ErrOutside},
		{name: "zero", wantErr: ErrOutside},
		{name: "..", wantErr: ErrOutside},
		{name: "missing", wantErr: fs.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Stat(tt.name)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Stat = %v, want %v", err, tt.wantErr)
			}
			p, err := d.RealPath(tt.name)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("RealPath = %q, %v, want %v", p, err, tt.wantErr)
			}
			if tt.wantErr == nil && p != filepath.Join(real, tt.want) {
				t.Errorf("RealPath = %s, want %s", p, filepath.Join(real, tt.want))
			}
		})
	}
	if fi, err := d.Lstat("zero"); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(zero) = %v, %v; want the link itself", fi, err)
	}
}

// TestEscapeError pins the text of os.Root's unexported "path escapes from parent", which
// escapes() recognises.
func TestEscapeError(t *testing.T) {
	r, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = r.Stat("../x")
	if !escapes(err) {
		t.Fatalf("os.Root's escape error is now %v: update escapes", err)
	}
}

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func fifo(t *testing.T, name string) {
	t.Helper()
	if err := syscall.Mkfifo(name, 0o644); err != nil {
		t.Fatal(err)
	}
}
