package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// ErrNotRegular reports a path that is a symlink, a directory or a submodule at
// the commit, where ReadFile wants a file. Like ErrTooLarge it is the commit's
// content, so retrying cannot help.
var ErrNotRegular = errors.New("not a regular file")

// ReadFile returns the content of path at commit sha without a checkout,
// fetching first if the mirror does not have the commit. path is relative to
// the repository root with "/" separators. It fails with ErrNotFound if the
// commit or the file does not exist, and ErrTooLarge above
// Config.MaxFileSize. Symlinks, directories and submodules are refused with
// ErrNotRegular. It reads git's objects, never a checkout, so a symlink is
// never followed and the read is bounded before it starts.
func (c *Cache) ReadFile(ctx context.Context, repo Repo, sha, path string) ([]byte, error) {
	sha, err := normalizeSHA(sha)
	if err != nil {
		return nil, err
	}
	if !fs.ValidPath(path) || path == "." {
		return nil, fmt.Errorf("reading %q: path must be relative, slash-separated, without . or .. elements", path)
	}
	dir, err := c.mirrorDir(repo)
	if err != nil {
		return nil, err
	}
	found, err := c.ensureCommits(ctx, repo, dir, sha)
	if err != nil {
		return nil, fmt.Errorf("reading %s at %s: %w", path, sha, err)
	}
	if !found[0] {
		return nil, fmt.Errorf("reading %s at %s: commit %w", path, sha, ErrNotFound)
	}

	e, err := c.treeEntry(ctx, dir, sha, path)
	if err != nil {
		return nil, fmt.Errorf("reading %s at %s: %w", path, sha, err)
	}
	if e.typ != "blob" || (e.mode != "100644" && e.mode != "100755") {
		return nil, fmt.Errorf("reading %s at %s: %w (mode %s)", path, sha, ErrNotRegular, e.mode)
	}
	if e.size > c.maxFileSize {
		return nil, fmt.Errorf("reading %s at %s: %d bytes: %w (limit %d)", path, sha, e.size, ErrTooLarge, c.maxFileSize)
	}
	out := &capBuffer{max: c.maxFileSize}
	if _, err := c.run(ctx, gitRun{gitDir: dir, args: []string{"cat-file", "blob", e.oid}, stdout: out}); err != nil {
		return nil, fmt.Errorf("reading %s at %s: %w", path, sha, err)
	}
	if out.overflow {
		return nil, fmt.Errorf("reading %s at %s: %w (limit %d)", path, sha, ErrTooLarge, c.maxFileSize)
	}
	return out.buf.Bytes(), nil
}

type treeEntry struct {
	mode, typ, oid string
	size           int64
}

// treeEntry looks path up with ls-tree, which prints nothing for a missing
// path rather than an error to interpret, and gives type and size before
// anything is read. Pathspecs are literal so "*" in a name is just "*".
func (c *Cache) treeEntry(ctx context.Context, dir, sha, path string) (treeEntry, error) {
	out, err := c.run(ctx, gitRun{
		gitDir: dir,
		args:   []string{"ls-tree", "-z", "--long", sha, "--", path},
		env:    []string{"GIT_LITERAL_PATHSPECS=1"},
	})
	if err != nil {
		return treeEntry{}, err
	}
	// Each record is "<mode> <type> <oid> <size>\t<name>\0", size padded.
	for _, rec := range strings.Split(string(out), "\x00") {
		meta, name, ok := strings.Cut(rec, "\t")
		if !ok || name != path {
			continue
		}
		f := strings.Fields(meta)
		if len(f) != 4 {
			return treeEntry{}, fmt.Errorf("unexpected ls-tree output %q", meta)
		}
		e := treeEntry{mode: f[0], typ: f[1], oid: f[2]}
		if f[3] != "-" { // "-" for trees and submodules
			if e.size, err = strconv.ParseInt(f[3], 10, 64); err != nil {
				return treeEntry{}, fmt.Errorf("unexpected ls-tree size %q", f[3])
			}
		}
		return e, nil
	}
	return treeEntry{}, fmt.Errorf("file %w", ErrNotFound)
}

// capBuffer keeps at most max bytes and notes whether more came.
type capBuffer struct {
	buf      bytes.Buffer
	max      int64
	overflow bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - int64(b.buf.Len()); int64(len(p)) > room {
		b.buf.Write(p[:max(room, 0)])
		b.overflow = true
		return len(p), nil
	}
	return b.buf.Write(p)
}
