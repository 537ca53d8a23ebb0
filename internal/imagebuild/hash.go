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
	"path/filepath"
	"slices"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/repofs"
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
//
// The checkout is the repository's, so it is read through repofs, within the default Limits: a
// named pipe, device or socket, a link out of the checkout where a file is read, or a context
// above the limits fails with the reason (see Hasher).
func InputsHash(req deploy.BuildRequest) (string, error) { return Hasher{}.InputsHash(req) }

// Hasher is InputsHash within Limits; its zero value has repofs's defaults (2 GiB of files,
// 250,000 files and directories, 256 levels).
type Hasher struct {
	Limits repofs.Limits
}

// InputsHash is the package's InputsHash within hs.Limits.
func (hs Hasher) InputsHash(req deploy.BuildRequest) (string, error) {
	if req.Dir == "" || !filepath.IsAbs(req.Dir) {
		return "", fmt.Errorf("hashing build inputs: checkout dir %q is not an absolute path", req.Dir)
	}
	d, err := repofs.Open(req.Dir)
	if err != nil {
		return "", fmt.Errorf("hashing build inputs: %w", err)
	}
	defer d.Close()
	p, err := resolveIn(d, req)
	if err != nil {
		return "", fmt.Errorf("hashing build inputs: %w", err)
	}
	h := sha256.New()
	writeField(h, "slipway-build-inputs-v1")

	df, err := d.ReadFile(p.dockerfileRel, maxControlFile)
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

	ignore, err := loadIgnore(d, p)
	if err != nil {
		return "", fmt.Errorf("hashing build inputs: %w", err)
	}
	writeField(h, "context")
	if err := hashTree(h, d, p.contextRel, ignore, hs.Limits); err != nil {
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

// hashTree walks the context in lexical order (repofs.Walk's, which is WalkDir's), so the order
// is the same everywhere.
func hashTree(h hash.Hash, d *repofs.Dir, context string, ignore *ignoreRules, lim repofs.Limits) error {
	return d.Walk(context, lim, func(e repofs.Entry) error {
		mode := e.Info.Mode()
		if ignore.excludes(e.Path) {
			if mode.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		writeField(h, e.Path)
		writeField(h, fmt.Sprintf("%o", mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
		switch {
		case mode.IsDir():
			writeField(h, "dir")
		case mode.IsRegular():
			writeField(h, "file")
			return hashFile(h, e)
		default: // the walk refuses everything else
			writeField(h, "symlink")
			writeField(h, e.Target)
		}
		return nil
	})
}

func hashFile(h hash.Hash, e repofs.Entry) error {
	f, err := e.Open()
	if err != nil {
		return err
	}
	defer f.Close()
	fh := sha256.New()
	if _, err := io.Copy(fh, f); err != nil {
		return fmt.Errorf("reading %s: %w", e.Path, err)
	}
	writeField(h, string(fh.Sum(nil)))
	return nil
}
