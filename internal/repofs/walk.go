package repofs

import (
	"cmp"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
)

// Limits bound a Walk; zero fields take the defaults. They make a walk of a hostile tree end
// soon, with a reason, whatever the tree holds.
type Limits struct {
	// MaxBytes bounds the bytes of the regular files opened during the walk. Default 2 GiB.
	MaxBytes int64
	// MaxEntries bounds the files, directories and links the walk lists. Listings are held while
	// the walk is under them, so this also bounds its memory. Default 250,000.
	MaxEntries int
	// MaxDepth bounds how deep directories nest under the walk's start. Default 256.
	MaxDepth int
}

func (l Limits) withDefaults() Limits {
	l.MaxBytes = cmp.Or(l.MaxBytes, 2<<30)
	l.MaxEntries = cmp.Or(l.MaxEntries, 250_000)
	l.MaxDepth = cmp.Or(l.MaxDepth, 256)
	return l
}

// Entry is one path met by Walk.
type Entry struct {
	Path   string      // relative to the walk's start, slash-separated
	Info   fs.FileInfo // of the path itself: a symlink is described as a symlink
	Target string      // a symlink's text; the link is never followed

	open func() (*File, error)
}

// Open opens a regular file met by the walk, its size counted against Limits.MaxBytes. It is
// valid only while the walk's fn runs for this entry.
func (e Entry) Open() (*File, error) {
	if e.open == nil {
		return nil, refuse(e.Path, ErrNotRegular, "is not a regular file")
	}
	return e.open()
}

// Walk calls fn for every path under name (name itself excluded), in lexical order with a
// directory before what it holds: filepath.WalkDir's order, so that a digest of the walk is the
// same on every machine. name must be a directory inside the checkout (a symlink to one inside is
// followed); below it, symlinks are reported with their text and never followed. A named pipe,
// device or socket ends the walk with ErrNotRegular, more than lim allows with ErrTooLarge or
// ErrTooMany. When fn returns fs.SkipDir for a directory, what it holds is skipped; any other
// error from fn ends the walk and is returned.
func (d *Dir) Walk(name string, lim Limits, fn func(Entry) error) error {
	if err := checkName(name); err != nil {
		return err
	}
	r, err := d.root.OpenRoot(name)
	if err != nil {
		return pathError(name, err)
	}
	defer r.Close()
	w := &walker{lim: lim.withDefaults(), start: filepath.ToSlash(name), fn: fn}
	w.bytes = w.lim.MaxBytes
	return w.dir(r, ".", 0)
}

type walker struct {
	lim     Limits
	start   string
	fn      func(Entry) error
	entries int
	bytes   int64 // left to open
}

// display names rel for messages: relative to the checkout, not to the walk's start.
func (w *walker) display(rel string) string { return path.Join(w.start, rel) }

// dir walks the directory r, which is rel under the start, depth levels down.
func (w *walker) dir(r *os.Root, rel string, depth int) error {
	names, err := w.list(r, rel)
	if err != nil {
		return err
	}
	for _, name := range names {
		child := path.Join(rel, name)
		fi, err := r.Lstat(name)
		if err != nil {
			return pathError(w.display(child), err)
		}
		e := Entry{Path: child, Info: fi}
		switch m := fi.Mode(); {
		case m.IsDir():
			if err := w.fn(e); errors.Is(err, fs.SkipDir) {
				continue
			} else if err != nil {
				return err
			}
			if depth+1 > w.lim.MaxDepth {
				return refuse(w.display(child), ErrTooMany, "is nested more than %d directories deep", w.lim.MaxDepth)
			}
			if err := w.subdir(r, name, child, fi, depth+1); err != nil {
				return err
			}
		case m&fs.ModeSymlink != 0:
			if e.Target, err = r.Readlink(name); err != nil {
				return pathError(w.display(child), err)
			}
			if err := w.fn(e); err != nil && !errors.Is(err, fs.SkipDir) {
				return err
			}
		case m.IsRegular():
			e.open = func() (*File, error) { return w.openFile(r, name, child, fi) }
			if err := w.fn(e); err != nil && !errors.Is(err, fs.SkipDir) {
				return err
			}
		default:
			return checkRegular(w.display(child), m)
		}
	}
	return nil
}

// subdir opens name, a directory of r that Lstat described as fi, and walks it. Each level holds
// one descriptor, so MaxDepth bounds them too.
func (w *walker) subdir(r *os.Root, name, rel string, fi fs.FileInfo, depth int) error {
	sub, err := r.OpenRoot(name)
	if err != nil {
		return pathError(w.display(rel), err)
	}
	defer sub.Close()
	if got, err := sub.Stat("."); err != nil || !os.SameFile(fi, got) {
		return refuse(w.display(rel), ErrNotRegular, "changed while being walked")
	}
	return w.dir(sub, rel, depth)
}

// list returns the names in r, sorted, a batch at a time so that a directory of millions of
// entries is refused once MaxEntries are read rather than read whole.
func (w *walker) list(r *os.Root, rel string) ([]string, error) {
	f, err := r.Open(".")
	if err != nil {
		return nil, pathError(w.display(rel), err)
	}
	defer f.Close()
	var names []string
	for {
		batch, err := f.Readdirnames(256)
		w.entries += len(batch)
		if w.entries > w.lim.MaxEntries {
			return nil, refuse(w.start, ErrTooMany, "holds more than %d files and directories", w.lim.MaxEntries)
		}
		names = append(names, batch...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, pathError(w.display(rel), err)
		}
	}
	slices.Sort(names)
	return names, nil
}

func (w *walker) openFile(r *os.Root, name, rel string, fi fs.FileInfo) (*File, error) {
	if fi.Size() > w.bytes {
		return nil, refuse(w.start, ErrTooLarge, "holds more than %d bytes of files (the limit, reached at %q, %d bytes)",
			w.lim.MaxBytes, w.display(rel), fi.Size())
	}
	w.bytes -= fi.Size()
	return openRegular(r, name, w.display(rel), fi, fi.Size())
}
