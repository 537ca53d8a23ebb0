package source

import (
	"context"
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
// the URL is https, the only transport the token is ever sent over: never in
// clear over http, never to a local path. Which of them a server may use is
// its configuration's business (see Pin). Credentials belong in Repo.Token:
// userinfo in the URL (a token as the user name, or a password) would show
// up in git's argv, so it is refused. The URL itself is never quoted in
// errors, in case it carries one anyway.
func checkCloneURL(raw string) (isHTTPS bool, err error) {
	if filepath.IsAbs(raw) {
		return false, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return false, fmt.Errorf("%w: unparsable clone URL", ErrInvalidRepo)
	}
	switch u.Scheme {
	case "http", "https", "file":
	default:
		return false, fmt.Errorf("%w: clone URL must be http(s), file:// or an absolute path", ErrInvalidRepo)
	}
	if u.User != nil {
		return false, fmt.Errorf("%w: clone URL contains credentials; use Repo.Token", ErrInvalidRepo)
	}
	return u.Scheme == "https", nil
}

// RemoteFunc names where the repository fullName is fetched from and the
// token that may be sent there ("" for none). The server's configuration
// answers (config.Config.Remote); an error means it may not be fetched.
type RemoteFunc func(fullName string) (cloneURL, token string, err error)

// Pinned is a Cache that fetches every repository from the remote its
// configuration names: the clone URL and token of the Repo it is given are
// replaced, so a URL recorded with a run, let alone one a webhook sent, is
// never contacted, and a token goes nowhere but where it is configured for.
// It has the Cache's methods that may fetch.
type Pinned struct {
	cache  *Cache
	remote RemoteFunc
}

// Pin wraps c so that every fetch goes to the remote that remote names.
func Pin(c *Cache, remote RemoteFunc) *Pinned { return &Pinned{cache: c, remote: remote} }

func (p *Pinned) pin(repo Repo) (Repo, error) {
	cloneURL, token, err := p.remote(repo.FullName)
	if err != nil {
		return Repo{}, fmt.Errorf("%w: %w", ErrInvalidRepo, err)
	}
	return Repo{FullName: repo.FullName, CloneURL: cloneURL, Token: token}, nil
}

// Fetch is Cache.Fetch from the configured remote.
func (p *Pinned) Fetch(ctx context.Context, repo Repo) error {
	r, err := p.pin(repo)
	if err != nil {
		return err
	}
	return p.cache.Fetch(ctx, r)
}

// ReadFile is Cache.ReadFile from the configured remote.
func (p *Pinned) ReadFile(ctx context.Context, repo Repo, sha, path string) ([]byte, error) {
	r, err := p.pin(repo)
	if err != nil {
		return nil, err
	}
	return p.cache.ReadFile(ctx, r, sha, path)
}

// ChangedPaths is Cache.ChangedPaths from the configured remote.
func (p *Pinned) ChangedPaths(ctx context.Context, repo Repo, before, after string) ([]string, bool, error) {
	r, err := p.pin(repo)
	if err != nil {
		return nil, false, err
	}
	return p.cache.ChangedPaths(ctx, r, before, after)
}

// Checkout is Cache.Checkout from the configured remote.
func (p *Pinned) Checkout(ctx context.Context, repo Repo, sha string) (*Checkout, error) {
	r, err := p.pin(repo)
	if err != nil {
		return nil, err
	}
	return p.cache.Checkout(ctx, r, sha)
}

// ValidSHA reports whether sha is a full commit id: 40 hex characters, either case.
func ValidSHA(sha string) bool {
	_, err := normalizeSHA(sha)
	return err == nil
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
