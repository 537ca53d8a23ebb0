// Package repofs is how the server itself reads a checkout of a repository: only inside it, only
// regular files, never more than a limit. A repository is hostile input. A file in it can be a
// symlink to /dev/zero or /etc/shadow, a FIFO that blocks whoever opens it, a device node, a
// sparse file of a terabyte, or one of millions; docker build and git run as children, but
// whatever Slipway reads, stats or walks in a checkout goes through a Dir.
//
// The containment check is Go's os.Root: every name is resolved under the checkout's directory,
// symlinks are followed only while they stay inside it (and never when absolute), and ".."
// cannot climb out. os.Root does not refuse devices, FIFOs or sockets, nor bound a read: Dir does.
package repofs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// The kinds of refusal; an *Error wraps one of them.
var (
	// ErrOutside: the name, or a symlink on its way, leads outside the checkout.
	ErrOutside = errors.New("outside the checkout")
	// ErrNotRegular: a file to read is a directory, named pipe, device or socket.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge: a file, or the files of a walk, above its byte limit.
	ErrTooLarge = errors.New("too large")
	// ErrTooMany: a walk met more entries, or deeper directories, than its limits.
	ErrTooMany = errors.New("too many files")
)

// Error is a refusal to read a path of the checkout. Its message names the path relative to the
// checkout, never the server's directory, so it can be shown to whoever pushed.
type Error struct {
	Path string // slash-separated, relative to the checkout
	Err  error  // ErrOutside, ErrNotRegular, ErrTooLarge or ErrTooMany
	msg  string
}

func (e *Error) Error() string { return strconv.Quote(e.Path) + " " + e.msg }
func (e *Error) Unwrap() error { return e.Err }

func refuse(name string, kind error, format string, args ...any) *Error {
	return &Error{Path: filepath.ToSlash(name), Err: kind, msg: fmt.Sprintf(format, args...)}
}

// Dir is a checkout opened for reading. It is safe for concurrent use.
type Dir struct {
	root *os.Root
	real string // the checkout's directory, symlinks resolved
}

// Open opens the checkout at dir, which must exist; symlinks in dir itself are followed.
func Open(dir string) (*Dir, error) {
	real, err := filepath.EvalSymlinks(dir)
	if err == nil {
		real, err = filepath.Abs(real)
	}
	if err != nil {
		return nil, fmt.Errorf("resolving checkout dir: %w", err)
	}
	root, err := os.OpenRoot(real)
	if err != nil {
		return nil, fmt.Errorf("opening checkout dir: %w", err)
	}
	return &Dir{root: root, real: real}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Name is the checkout's directory, absolute, symlinks resolved: what RealPath's results are under.
func (d *Dir) Name() string { return d.real }

// Stat describes the file name refers to, following symlinks that stay inside the checkout. name
// is relative to the checkout ("." for itself); an absolute name, one with "..", or a symlink
// leaving the checkout is refused with ErrOutside. A missing file gives an error satisfying
// errors.Is(err, fs.ErrNotExist).
func (d *Dir) Stat(name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fi, err := d.root.Stat(name)
	return fi, pathError(name, err)
}

// Lstat is Stat that reports a symlink in the last element as itself.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fi, err := d.root.Lstat(name)
	return fi, pathError(name, err)
}

// RealPath is the absolute path of name with every symlink resolved, for a child process (docker
// build) that will open it itself. It is refused, like Stat, unless it stays inside the checkout.
func (d *Dir) RealPath(name string) (string, error) {
	fi, err := d.Stat(name)
	if err != nil {
		return "", err
	}
	// The os.Root above decided that name stays inside; EvalSymlinks only names the place, and
	// must agree.
	p, err := filepath.EvalSymlinks(filepath.Join(d.real, name))
	if err != nil {
		return "", pathError(name, err)
	}
	rel, err := filepath.Rel(d.real, p)
	if err != nil || !(rel == "." || filepath.IsLocal(rel)) {
		return "", refuse(name, ErrOutside, "leads outside the checkout")
	}
	if again, err := d.root.Lstat(rel); err != nil || !os.SameFile(fi, again) {
		return "", refuse(name, ErrOutside, "changed while being resolved")
	}
	return p, nil
}

// Open opens name for reading: a regular file inside the checkout of at most max bytes. A
// symlink leaving the checkout, a directory, a named pipe, a device or a socket is refused
// without being opened (a FIFO would block the open; /dev/zero never ends), and so is a file
// above max, by its size, before a byte of it is read.
func (d *Dir) Open(name string, max int64) (*File, error) {
	fi, err := d.Stat(name)
	if err != nil {
		return nil, err
	}
	return openRegular(d.root, name, name, fi, max)
}

// ReadFile returns the content of name, opened as Open does.
func (d *Dir) ReadFile(name string, max int64) ([]byte, error) {
	f, err := d.Open(name, max)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 0, f.size+1)
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}

// openRegular opens name in r, which Stat (or Lstat) described as fi, and checks that what was
// opened is that same regular file: it did not change into a FIFO or a link between the two.
// display is the name for messages, relative to the checkout.
func openRegular(r *os.Root, name, display string, fi fs.FileInfo, max int64) (*File, error) {
	if err := checkRegular(display, fi.Mode()); err != nil {
		return nil, err
	}
	if fi.Size() > max {
		return nil, refuse(display, ErrTooLarge, "is larger than the limit of %d bytes (%d bytes)", max, fi.Size())
	}
	// O_NONBLOCK: should name have become a FIFO since fi, the open returns at once instead of
	// waiting for a writer; on a regular file it changes nothing.
	f, err := r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, pathError(display, err)
	}
	got, err := f.Stat()
	if err == nil && !os.SameFile(fi, got) {
		err = refuse(display, ErrNotRegular, "changed while being opened")
	}
	if err == nil {
		err = checkRegular(display, got.Mode())
	}
	if err == nil && got.Size() > max {
		err = refuse(display, ErrTooLarge, "is larger than the limit of %d bytes (%d bytes)", max, got.Size())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &File{f: f, name: display, size: got.Size(), max: max}, nil
}

// File is a regular file of the checkout open for reading. A read past the limit it was opened
// with (the file grew) fails with ErrTooLarge.
type File struct {
	f    *os.File
	name string
	size int64 // at open
	max  int64
	n    int64
}

// Size is the file's size when it was opened.
func (f *File) Size() int64 { return f.size }

func (f *File) Read(p []byte) (int, error) {
	if f.n > f.max {
		return 0, refuse(f.name, ErrTooLarge, "grew past the limit of %d bytes while being read", f.max)
	}
	if room := f.max + 1 - f.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := f.f.Read(p)
	f.n += int64(n)
	if f.n > f.max {
		return n - int(f.n-f.max), refuse(f.name, ErrTooLarge, "grew past the limit of %d bytes while being read", f.max)
	}
	return n, err
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// checkName refuses what os.Root would too, with a message fit for the pusher.
func checkName(name string) error {
	if name == "." || filepath.IsLocal(name) {
		return nil
	}
	return refuse(name, ErrOutside, "is not a path inside the checkout")
}

func checkRegular(name string, m fs.FileMode) error {
	var what string
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case m&fs.ModeDevice != 0:
		what = "a device"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeSymlink != 0:
		what = "a symlink"
	default:
		what = "a special file (" + m.Type().String() + ")"
	}
	return refuse(name, ErrNotRegular, "is %s, not a regular file", what)
}

// pathError turns os.Root's refusal to leave the root into an *Error, and names the path in
// other errors by name, relative to the checkout, rather than by where the server keeps it.
func pathError(name string, err error) error {
	if err == nil {
		return nil
	}
	if escapes(err) {
		return refuse(name, ErrOutside, "leads outside the checkout (through a symlink or ..)")
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: filepath.ToSlash(name), Err: pe.Err}
	}
	return err
}

// escapes reports os.Root's "path escapes from parent", which the os package does not export;
// TestEscapeError pins its text.
func escapes(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "path escapes from parent"
}
