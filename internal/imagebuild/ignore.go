package imagebuild

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/slipway-dev/slipway/internal/repofs"
)

// maxControlFile bounds the Dockerfile and .dockerignore files, which the server reads whole to
// hash them and the docker CLI reads whole to build. Real ones are a few kilobytes.
const maxControlFile = 4 << 20

// ignoreRules is the subset of .dockerignore that InputsHash honours: lines of path.Match
// patterns ("*", "?", "[…]") against the slash-separated path relative to the context; a pattern
// that matches a directory excludes everything under it. A nil *ignoreRules excludes nothing.
type ignoreRules struct {
	patterns []string
}

// loadIgnore reads the context's .dockerignore. It returns nil (hash everything) when BuildKit
// would read <Dockerfile>.dockerignore instead, or when a line uses what parseIgnore does not
// understand. Either file must be a regular file inside the checkout within maxControlFile:
// docker's CLI reads them too, and a link to /dev/zero must fail the deployment here, with the
// reason, rather than exhaust the memory of the server or of docker.
func loadIgnore(d *repofs.Dir, p buildPaths) (*ignoreRules, error) {
	specific := p.dockerfileRel + ".dockerignore"
	if _, err := d.Lstat(specific); err == nil {
		f, err := d.Open(specific, maxControlFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // a dangling link: docker finds no file either
		}
		if err != nil {
			return nil, err
		}
		f.Close()
		return nil, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	data, err := d.ReadFile(filepath.Join(p.contextRel, ".dockerignore"), maxControlFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseIgnore(data), nil
}

// parseIgnore returns the rules of a .dockerignore, or nil if any line uses an exception ("!") or
// "**", which docker's matcher supports and this one does not.
func parseIgnore(data []byte) *ignoreRules {
	var r ignoreRules
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") || strings.Contains(line, "**") {
			return nil
		}
		pat := strings.TrimPrefix(path.Clean(filepath.ToSlash(line)), "/")
		if _, err := path.Match(pat, ""); err != nil || pat == "." || strings.HasPrefix(pat, "../") {
			return nil // docker would fail on a bad pattern; hash everything and let it
		}
		r.patterns = append(r.patterns, pat)
	}
	if sc.Err() != nil {
		return nil
	}
	return &r
}

// excludes reports whether rel, or a directory above it, matches a pattern.
func (r *ignoreRules) excludes(rel string) bool {
	if r == nil {
		return false
	}
	for _, pat := range r.patterns {
		for p := rel; p != "."; p = path.Dir(p) {
			if ok, _ := path.Match(pat, p); ok {
				return true
			}
		}
	}
	return false
}
