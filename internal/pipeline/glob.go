package pipeline

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Globs match /-separated paths and branch names. Within a segment they are path.Match patterns
// (*, ?, [...], [^...]); a segment that is exactly ** matches zero or more whole segments, so
// "services/**" matches "services", "services/a" and "services/a/b/c". This is the gitignore
// and doublestar meaning, written here to avoid a dependency for forty lines.

// validGlob reports a malformed pattern.
func validGlob(pattern string) error {
	if pattern == "" {
		return errors.New("empty pattern")
	}
	for _, seg := range strings.Split(pattern, "/") {
		if seg != "**" && strings.Contains(seg, "**") {
			return fmt.Errorf("pattern %q: ** must be a whole path segment, like a/**/b", pattern)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("pattern %q: invalid glob syntax", pattern)
		}
	}
	return nil
}

// matchGlob reports whether name matches pattern. A malformed pattern matches nothing.
func matchGlob(pattern, name string) bool {
	return matchSegments(strings.Split(pattern, "/"), strings.Split(name, "/"), matchSegment)
}

// matchSegments is the classic wildcard match with ** as the star and match (a path.Match of one
// segment) as the single-element test. On a mismatch it backtracks to the latest **, letting it
// swallow one more segment; earlier ** never need revisiting, so match is called O(len(pat) *
// len(name)) times however many ** a pattern holds. match is a parameter so that a test can
// count those calls.
func matchSegments(pat, name []string, match func(pattern, seg string) bool) bool {
	pi, ni := 0, 0
	star, starName := -1, 0
	for ni < len(name) {
		switch {
		case pi < len(pat) && pat[pi] == "**":
			star, starName = pi, ni
			pi++
		case pi < len(pat) && match(pat[pi], name[ni]):
			pi++
			ni++
		case star >= 0:
			starName++
			pi, ni = star+1, starName
		default:
			return false
		}
	}
	for pi < len(pat) && pat[pi] == "**" {
		pi++
	}
	return pi == len(pat)
}

func matchSegment(pattern, seg string) bool {
	ok, err := path.Match(pattern, seg)
	return ok && err == nil
}
