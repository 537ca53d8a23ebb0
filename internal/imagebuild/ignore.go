package imagebuild

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ignoreRules is the subset of .dockerignore that InputsHash honours: lines of path.Match
// patterns ("*", "?", "[…]") against the slash-separated path relative to the context; a pattern
// that matches a directory excludes everything under it. A nil *ignoreRules excludes nothing.
type ignoreRules struct {
	patterns []string
}

// loadIgnore reads the context's .dockerignore. It returns nil (hash everything) when BuildKit
// would read <Dockerfile>.dockerignore instead, or when a line uses what parseIgnore does not
// understand.
func loadIgnore(p buildPaths) (*ignoreRules, error) {
	if _, err := os.Lstat(p.dockerfile + ".dockerignore"); err == nil {
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(p.context, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
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
