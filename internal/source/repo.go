package source

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// maxNameLen keeps mirror directory names readable and well below NAME_MAX.
const maxNameLen = 64

// mirrorName turns a repository's full name into a single path element.
// The readable part keeps only [A-Za-z0-9._-] and never starts with "." or
// "-", so it cannot be "..", a hidden file or an option; the hash keeps names
// that sanitize alike ("a/b" and "a_b") in different mirrors.
func mirrorName(fullName string) string {
	var b strings.Builder
	for _, r := range fullName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	readable := strings.TrimLeft(b.String(), ".-_")
	if len(readable) > maxNameLen {
		readable = readable[:maxNameLen]
	}
	if readable == "" {
		readable = "repo"
	}
	sum := sha256.Sum256([]byte(fullName))
	return readable + "-" + hex.EncodeToString(sum[:8]) + ".git"
}

// mirrorDir is where repo's bare mirror lives, checked to be a direct child
// of the cache dir even though mirrorName already guarantees it.
func (c *Cache) mirrorDir(repo Repo) (string, error) {
	if repo.FullName == "" {
		return "", fmt.Errorf("%w: empty full name", ErrInvalidRepo)
	}
	dir := filepath.Join(c.dir, mirrorName(repo.FullName))
	if filepath.Dir(dir) != c.dir {
		return "", fmt.Errorf("%w: full name %q escapes the cache", ErrInvalidRepo, repo.FullName)
	}
	return dir, nil
}

// checkCloneURL accepts the transports Slipway supports and reports whether
// the URL is http(s), the only case where the token is sent. Credentials
// belong in Repo.Token: a password in the URL would show up in git's argv.
// The URL itself is never quoted in errors, in case it carries one anyway.
func checkCloneURL(raw string) (isHTTP bool, err error) {
	if filepath.IsAbs(raw) {
		return false, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false, fmt.Errorf("%w: unparsable clone URL", ErrInvalidRepo)
	}
	switch u.Scheme {
	case "http", "https":
		isHTTP = true
	case "file":
	default:
		return false, fmt.Errorf("%w: clone URL must be http(s), file:// or an absolute path", ErrInvalidRepo)
	}
	if _, ok := u.User.Password(); ok {
		return false, fmt.Errorf("%w: clone URL contains a password; use Repo.Token", ErrInvalidRepo)
	}
	return isHTTP, nil
}

// normalizeSHA accepts exactly 40 hex characters. The value comes from a
// webhook, so anything else (a ref name, an option) is refused before git
// ever sees it.
func normalizeSHA(sha string) (string, error) {
	if len(sha) != 40 {
		return "", fmt.Errorf("%w: %q", ErrInvalidSHA, truncate(sha, 64))
	}
	for i := 0; i < len(sha); i++ {
		c := sha[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return "", fmt.Errorf("%w: %q", ErrInvalidSHA, truncate(sha, 64))
		}
	}
	return strings.ToLower(sha), nil
}

const zeroSHA = "0000000000000000000000000000000000000000"

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
