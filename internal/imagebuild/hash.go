package imagebuild

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// InputsHash is a stable digest (24 hex characters of SHA-256) of everything in req that
// determines the image: each file under the build context (relative path, type, permission bits,
// content; a symlink as its target text, never followed), the Dockerfile's content (even when it
// lies outside the context), the build args and the target. The same checkout gives the same hash
// on any machine; any change to those inputs gives another, so an image already built and pushed
// for this hash can be reused.
//
// Labels and tags are left out on purpose: they carry per-deployment data (the commit, the
// deployment id) and would make every hash unique.
//
// Paths excluded by the context's .dockerignore are skipped, but only when every line of it is a
// simple pattern (see parseIgnore): with "!" exceptions, "**" or a Dockerfile-specific
// <Dockerfile>.dockerignore it hashes every file, since hashing too much only costs a rebuild and
// hashing too little would reuse a stale image.
func InputsHash(req deploy.BuildRequest) (string, error) {
	p, err := resolvePaths(req)
	if err != nil {
		return "", fmt.Errorf("hashing build inputs: %w", err)
	}
	h := sha256.New()
	writeField(h, "slipway-build-inputs-v1")

	df, err := os.ReadFile(p.dockerfile)
	if err != nil {
		return "", fmt.Errorf("hashing build inputs: reading dockerfile: %w", err)
	}
	writeField(h, "dockerfile")
	writeField(h, string(df))
	writeField(h, "target")
	writeField(h, req.Stage)
	writeField(h, "args")
	for _, k := range slices.Sorted(maps.Keys(req.BuildArgs)) {
		writeField(h, k)
		writeField(h, req.BuildArgs[k])
	}

	ignore, err := loadIgnore(p)
	if err != nil {
		return "", fmt.Errorf("hashing build inputs: %w", err)
	}
	writeField(h, "context")
	if err := hashTree(h, p.context, ignore); err != nil {
		return "", fmt.Errorf("hashing build context %s: %w", cmp.Or(req.Context, "."), err)
	}
	return hex.EncodeToString(h.Sum(nil))[:24], nil
}

// writeField writes s with its length first, so that no two different sequences of fields can
// produce the same bytes.
func writeField(h hash.Hash, s string) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(s)))
	h.Write(n[:])
	io.WriteString(h, s)
}

// hashTree walks root in lexical order (WalkDir's), so the order is the same everywhere.
func hashTree(h hash.Hash, root string, ignore *ignoreRules) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if ignore.excludes(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode()
		writeField(h, rel)
		writeField(h, fmt.Sprintf("%o", mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
		switch {
		case mode.IsDir():
			writeField(h, "dir")
		case mode.IsRegular():
			writeField(h, "file")
			return hashFile(h, path)
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			writeField(h, "symlink")
			writeField(h, target)
		default:
			// Sockets, fifos, devices: docker cannot send their content either.
			writeField(h, "other "+mode.Type().String())
		}
		return nil
	})
}

func hashFile(h hash.Hash, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fh := sha256.New()
	if _, err := io.Copy(fh, f); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	writeField(h, string(fh.Sum(nil)))
	return nil
}
