package pipeline

import (
	"path"
	"strings"
	"testing"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		// Plain paths.
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"README.md", "README.md", true},
		{"README.md", "docs/README.md", false},

		// * and ? stay within one segment.
		{"*", "a", true},
		{"*", "a/b", false},
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"a/*/c", "a/b/c", true},
		{"a/*/c", "a/b/x/c", false},
		{"a/*", "a/", true},
		{"a/?", "a/b", true},
		{"a/?", "a/bc", false},
		{"*", ".hidden", true},

		// Classes.
		{"v[0-9]", "v1", true},
		{"v[0-9]", "vx", false},
		{"v[^0-9]", "vx", true},
		{"[a-c]/x", "b/x", true},

		// ** spans zero or more whole segments.
		{"**", "a", true},
		{"**", "a/b/c", true},
		{"**", "", true},
		{"a/**", "a", true},
		{"a/**", "a/b", true},
		{"a/**", "a/b/c/d", true},
		{"a/**", "ab/c", false},
		{"a/**", "b/a/c", false},
		{"**/b", "b", true},
		{"**/b", "a/b", true},
		{"**/b", "a/x/y/b", true},
		{"**/b", "a/b/c", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/b", true},
		{"a/**/b", "a/x/y/z/b", true},
		{"a/**/b", "a/x/y/z/c", false},
		{"a/**/b", "a/b/x", false},
		{"a/**/b/**/c", "a/b/c", true},
		{"a/**/b/**/c", "a/x/b/y/c", true},
		{"a/**/b/**/c", "a/x/c/y/b", false},
		{"**/*.go", "main.go", true},
		{"**/*.go", "a/b/main.go", true},
		{"**/*.go", "a/b/main.js", false},
		{"**/**", "a/b", true},
		{"**/x/**", "x", true},
		{"**/x/**", "a/x/b", true},
		{"**/x/**", "a/y/b", false},
		{"services/api/**", "services/api/cmd/main.go", true},
		{"services/api/**", "services/apix/main.go", false},
		{"libs/**", "libs", true},
		// Backtracking past a partial match.
		{"**/a/b", "a/a/b", true},
		{"**/a/b", "a/a/a/b", true},
		{"**/a/b", "a/b/a/c", false},
		{"a/**/a/b", "a/a/a/b/a/b", true},

		// Branch-style names.
		{"main", "main", true},
		{"main", "maintenance", false},
		{"release/*", "release/1.0", true},
		{"release/*", "release/1.0/hotfix", false},
		{"release/**", "release/1.0/hotfix", true},
		{"feature/*", "feature", false},

		// Malformed patterns match nothing.
		{"[", "[", false},
		{"a/[", "a/b", false},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

// TestMatchGlobAgreesWithPathMatch: without **, matchGlob is path.Match.
func TestMatchGlobAgreesWithPathMatch(t *testing.T) {
	patterns := []string{"a/b", "*", "*/*", "a/*", "*/b", "?/?", "[ab]/c", "a*/b*", "*.go", "a/*/c"}
	names := []string{"a", "a/b", "b/b", "ab/bc", "a/b/c", "x.go", "a/x.go", "c/c", "a//c", "", "/", "a/"}
	for _, p := range patterns {
		for _, n := range names {
			want, _ := path.Match(p, n)
			if got := matchGlob(p, n); got != want {
				t.Errorf("matchGlob(%q, %q) = %v, path.Match says %v", p, n, got, want)
			}
		}
	}
}

func TestValidGlob(t *testing.T) {
	tests := []struct {
		pattern string
		ok      bool
	}{
		{"a/b", true},
		{"**", true},
		{"a/**/b", true},
		{"**/*.go", true},
		{"[a-z]/x", true},
		{"", false},
		{"a**", false},
		{"a/**b", false},
		{"***", false},
		{"[", false},
		{"a/[z-a", false},
		{"a/[", false},
		{"x/[]", false},
	}
	for _, tt := range tests {
		if err := validGlob(tt.pattern); (err == nil) != tt.ok {
			t.Errorf("validGlob(%q) = %v, want ok=%v", tt.pattern, err, tt.ok)
		}
	}
}

// worstGlob is many ** against a long name that does not match: a backtracking matcher that
// revisited every ** would be exponential in their number.
var worstGlob = struct{ pattern, name string }{strings.Repeat("**/a/", 50) + "b", strings.Repeat("a/", 2000) + "c"}

// TestMatchGlobIsNotExponential bounds the work, not the time: it counts the single-segment
// matches, which the algorithm promises to keep under one per (pattern segment, name segment)
// pair, and stops an exponential matcher as soon as it goes over.
func TestMatchGlobIsNotExponential(t *testing.T) {
	pat, name := strings.Split(worstGlob.pattern, "/"), strings.Split(worstGlob.name, "/")
	limit := len(pat) * len(name)
	calls := 0
	counted := func(pattern, seg string) bool {
		calls++
		if calls > limit {
			t.Fatalf("more than %d segment matches for %d pattern and %d name segments", limit, len(pat), len(name))
		}
		return matchSegment(pattern, seg)
	}
	if matchSegments(pat, name, counted) {
		t.Fatal("unexpected match")
	}
	t.Logf("%d segment matches (limit %d)", calls, limit)
}

// BenchmarkMatchGlobWorstCase times what TestMatchGlobIsNotExponential bounds.
func BenchmarkMatchGlobWorstCase(b *testing.B) {
	for b.Loop() {
		if matchGlob(worstGlob.pattern, worstGlob.name) {
			b.Fatal("unexpected match")
		}
	}
}
