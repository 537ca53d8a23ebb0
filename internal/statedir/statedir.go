// Package statedir keeps the scratch files of a Slipway process that hold secrets or repository
// content (checkouts, per-push Docker configs holding a registry login) under Slipway's own state
// directory, private to its user, and removes what a process that died left there.
//
// Several processes may share a parent (replicas on one host, a restart that overlaps the old
// process): each works in a directory of its own, "slipway-*", holding a flock(2) on its lock file
// for as long as it lives. Opening a parent removes every "slipway-*" entry whose lock nobody
// holds, so a crash leaves its files only until the next start, and never removes a live
// process's files. Entries with other names are left alone.
package statedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

const (
	prefix     = "slipway-"
	lockName   = "lock"         // in each process's directory
	parentLock = "slipway.lock" // in the parent: serializes sweeps with the making of directories
)

// Default is the state directory when none is configured: slipway-<uid> in the temp dir.
func Default() string {
	return filepath.Join(os.TempDir(), "slipway-"+strconv.Itoa(os.Geteuid()))
}

// Dir is one process's private directory under a shared parent.
type Dir struct {
	path string
	lock *os.File // flocked while the process lives; the kernel lets go when it dies
}

// Open makes parent if it is missing (mode 0700, with any missing ancestors), checks that it
// belongs to this user and that no one else can write to it, removes what dead processes left in
// it, and makes this process's directory there (0700). Close removes that directory; if the
// process dies first, the next Open of parent does.
func Open(parent string) (*Dir, error) {
	parent, err := filepath.Abs(parent)
	if err != nil {
		return nil, fmt.Errorf("resolving state dir: %w", err)
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	if err := checkPrivate(parent); err != nil {
		return nil, err
	}
	pl, err := lockFile(filepath.Join(parent, parentLock), syscall.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("locking state dir %s: %w", parent, err)
	}
	defer pl.Close() // releases the parent's lock
	if err := sweep(parent); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, prefix) // 0700
	if err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	lock, err := lockFile(filepath.Join(dir, lockName), syscall.LOCK_EX|syscall.LOCK_NB)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("locking state dir %s: %w", dir, err)
	}
	return &Dir{path: dir, lock: lock}, nil
}

// Path is the process's directory.
func (d *Dir) Path() string { return d.path }

// MkdirTemp makes a new directory (0700) in the process's directory, for the caller to remove.
func (d *Dir) MkdirTemp(pattern string) (string, error) {
	return os.MkdirTemp(d.path, pattern)
}

// Close removes the process's directory with whatever is left in it.
func (d *Dir) Close() error {
	err := os.RemoveAll(d.path)
	d.lock.Close()
	if err != nil {
		return fmt.Errorf("removing state dir: %w", err)
	}
	return nil
}

// checkPrivate refuses a parent that another user owns or can write to: one who could would be
// able to read or swap the files kept there. It is not made private by force, since it may be a
// directory the operator uses for more (and may even be /tmp).
func checkPrivate(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("checking state dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state dir %s belongs to uid %d, not to this user (uid %d)", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("state dir %s can be written by other users (mode %v): make it 0700", dir, fi.Mode().Perm())
	}
	return nil
}

// sweep removes the "slipway-*" entries of parent that no live process holds. The caller holds
// parent's lock, so no process is between making its directory and locking it.
func sweep(parent string) error {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return fmt.Errorf("reading state dir: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(parent, e.Name())
		if e.IsDir() && held(filepath.Join(p, lockName)) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing what a previous run left in the state dir: %w", err)
	}
	return nil
}

// held reports whether a live process holds the lock file name.
func held(name string) bool {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false // no lock file: a directory from before locks, or one never finished
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}

// lockFile opens (creating) and flocks name. The descriptor is close-on-exec, so no child
// process (git, docker) inherits the lock and keeps it past the process's death.
func lockFile(name string, how int) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
