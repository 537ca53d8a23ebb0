package pipeline

import (
	"fmt"
	"path"
	"strings"
	"unicode"
)

// checkRepoPath rejects a repository-relative path that could name something outside the
// checkout. It refuses ".." anywhere, even where cleaning would cancel it ("a/../b"): nobody needs
// that, and a rule without exceptions is one the JSON schema can state as well.
func checkRepoPath(p string) string {
	switch {
	case len(p) > maxPathLen:
		return fmt.Sprintf("longer than %d bytes", maxPathLen)
	case strings.ContainsRune(p, 0):
		return "must not contain NUL characters"
	case strings.ContainsRune(p, '\\'):
		return "must use / as separator, not \\"
	case strings.HasPrefix(p, "/"):
		return "must be relative to the repository root, not absolute"
	case strings.ContainsFunc(p, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) }):
		return "must not contain control or invisible formatting characters"
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return "must stay inside the repository (no .. elements)"
		}
	}
	return ""
}

// cleanRepoPath is the canonical form of a path that passed checkRepoPath: "./a//b/" is "a/b".
func cleanRepoPath(p string) string {
	return path.Clean(p)
}

// checkGlob checks an entry of paths: a repository path that may hold globs.
func checkGlob(g string) string {
	if msg := checkRepoPath(g); msg != "" {
		return msg
	}
	if err := validGlob(cleanGlob(g)); err != nil {
		return err.Error()
	}
	return ""
}

// cleanGlob is the canonical form of a paths entry. A trailing slash means "everything below":
// "services/api/" is "services/api/**", what people mean when they write a directory.
func cleanGlob(g string) string {
	dir := strings.HasSuffix(g, "/")
	g = path.Clean(g)
	if dir && g != "." {
		g += "/**"
	}
	if g == "." {
		g = "**"
	}
	return g
}
