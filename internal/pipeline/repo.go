package pipeline

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/repofs"
)

// CheckInRepo checks every service's context and dockerfile against a checkout of the commit at
// root: each must exist, be a directory (context) or a regular file (dockerfile), and stay inside
// root, symlinks followed. A repository can hold a symlink to /etc or to the server's own files,
// and docker build would follow it for the Dockerfile; a FIFO or a device node where the
// Dockerfile should be would hang or flood the docker CLI. The check is repofs's, the one every
// read of a checkout goes through; nothing is opened here.
//
// The returned error is an ErrorList naming the service and key, or a plain error if root itself
// cannot be opened.
func (f *File) CheckInRepo(root string) error {
	d, err := repofs.Open(root)
	if err != nil {
		return fmt.Errorf("resolving repository checkout %s: %w", root, err)
	}
	defer d.Close()
	var errs ErrorList
	add := func(p, msg string) {
		pos := f.lookup(p)
		errs = append(errs, &Error{File: f.name, Line: pos.Line, Column: pos.Column, Path: p, Msg: msg})
	}
	for i := range f.Services {
		s := &f.Services[i]
		sp := child("services", s.Name)
		context := cmp.Or(s.Context, DefaultContext)
		if msg := checkInRepo(d, context, true); msg != "" {
			add(child(sp, "context"), msg)
		}
		dockerfile := cmp.Or(s.Dockerfile, path.Join(context, "Dockerfile"))
		if msg := checkInRepo(d, dockerfile, false); msg != "" {
			add(child(sp, "dockerfile"), msg)
		}
	}
	errs.sortByPosition()
	return errs.truncate(f.name).err()
}

// checkInRepo checks one repository-relative path of the checkout d.
func checkInRepo(d *repofs.Dir, rel string, dir bool) string {
	if msg := checkRepoPath(rel); msg != "" {
		return fmt.Sprintf("%q %s", rel, msg)
	}
	info, err := d.Stat(filepath.FromSlash(rel))
	switch {
	case errors.Is(err, repofs.ErrOutside):
		return fmt.Sprintf("%q resolves outside the repository (through a symlink)", rel)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%q does not exist in the repository at this commit", rel)
	case err != nil:
		return fmt.Sprintf("%q cannot be resolved: %v", rel, cause(err))
	case dir && !info.IsDir():
		return fmt.Sprintf("%q is not a directory", rel)
	case !dir && !info.Mode().IsRegular():
		return fmt.Sprintf("%q is not a regular file", rel)
	}
	return ""
}

// cause drops the absolute path from a *fs.PathError: the message goes to the user, who knows the
// repository path and has no use for the server's checkout directory.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lookup finds where path, or its nearest ancestor, was in the source; nothing for a File that
// did not come from Parse.
func (f *File) lookup(path string) position {
	if f.pos == nil {
		return position{}
	}
	return (&decoder{pos: f.pos}).lookup(path)
}

// CheckBuild is CheckInRepo for the build of one service, as a deployment's spec holds it.
func CheckBuild(root, service string, b deploy.Build) error {
	f := &File{Services: []Service{{Name: service, Context: b.Context, Dockerfile: b.Dockerfile}}}
	return f.CheckInRepo(root)
}
