package config

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// Canonical is how a repository or organisation name is compared and stored: GitHub's names are
// case-insensitive, so ACME/x and acme/x are one repository.
func Canonical(name string) string { return strings.ToLower(name) }

// Repos matches pushes against the configured repositories.
type Repos []Repository

// MatchPush reports whether a push to repo's branch may deploy, and the configured clone URL to
// record with its run; see webhook.Repositories.
func (rs Repos) MatchPush(repo, branch string) (cloneURL, reason string, ok bool) {
	for _, r := range rs {
		if !strings.EqualFold(r.Name, repo) {
			continue
		}
		if len(r.Branches) == 0 {
			return r.CloneURL, "", true
		}
		for _, pattern := range r.Branches {
			if m, _ := path.Match(pattern, branch); m {
				return r.CloneURL, "", true
			}
		}
		return "", "branch " + branch + " is not a deploy branch of " + r.Name, false
	}
	return "", "repository " + repo + " is not configured", false
}

func (c *Config) repository(name string) (Repository, bool) {
	for _, r := range c.Repositories {
		if strings.EqualFold(r.Name, name) {
			return r, true
		}
	}
	return Repository{}, false
}

// WebhookSecrets returns the secrets that may sign a delivery about repo (owner/name, or an
// organisation's login alone for a delivery that names no repository): the repository's own if
// it has any, else its organisation's if it has any, else the global webhook.secrets. Only one
// level ever applies, so a repository's secret cannot sign another repository's deliveries.
func (c *Config) WebhookSecrets(repo string) [][]byte {
	if r, ok := c.repository(repo); ok && len(r.WebhookSecret) > 0 {
		return reveal(r.WebhookSecret)
	}
	owner, _, _ := strings.Cut(repo, "/")
	for _, o := range c.Orgs {
		if strings.EqualFold(o.Name, owner) && len(o.WebhookSecret) > 0 {
			return reveal(o.WebhookSecret)
		}
	}
	return reveal(c.Webhook.Secrets)
}

func reveal(secrets []Secret) [][]byte {
	out := make([][]byte, len(secrets))
	for i, s := range secrets {
		out[i] = []byte(s.Reveal())
	}
	return out
}

// Remote returns where repo is fetched from and the token that may be sent there: the repository's
// own token, which goes to its clone URL's host, else git.token when the clone URL is on
// github.url's host; never a token over anything but https. A repository that is not configured
// has no remote. Nothing a webhook sends takes part.
func (c *Config) Remote(repo string) (cloneURL, token string, err error) {
	r, ok := c.repository(repo)
	if !ok {
		return "", "", fmt.Errorf("repository %s is not configured", repo)
	}
	cloneURL = r.CloneURL
	if cloneURL == "" {
		cloneURL = c.defaultCloneURL(r.Name)
	}
	u, err := url.Parse(cloneURL)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return cloneURL, "", nil
	}
	if r.Token != "" {
		return cloneURL, r.Token.Reveal(), nil
	}
	if gh, err := url.Parse(c.GitHub.URL); err == nil && gh.Scheme == "https" && strings.EqualFold(gh.Host, u.Host) {
		return cloneURL, c.Git.Token.Reveal(), nil
	}
	return cloneURL, "", nil
}

// Token returns the git token that may be sent for repo, "" for none; see Remote.
func (c *Config) Token(repo string) string {
	_, token, _ := c.Remote(repo)
	return token
}

func (c *Config) defaultCloneURL(name string) string {
	return strings.TrimRight(c.GitHub.URL, "/") + "/" + Canonical(name) + ".git"
}

// validateRepositories canonicalises and checks repositories, orgs and github.url.
func (c *Config) validateRepositories(bad func(key, format string, args ...any)) {
	insecure := c.Git.AllowInsecureURLs
	c.GitHub.URL = strings.TrimRight(c.GitHub.URL, "/")
	gh, ghErr := checkRemoteURL(c.GitHub.URL, insecure)
	if ghErr != nil {
		bad("github.url (SLIPWAY_GITHUB_URL)", "%v", ghErr)
	} else if c.Git.Token != "" && gh.Scheme != "https" {
		bad("git.token (SLIPWAY_GIT_TOKEN)", "github.url is not https, and a token is only ever sent over https")
	}
	secrets := func(key string, ss Secrets) {
		for j, s := range ss {
			if len(s) < 8 {
				bad(fmt.Sprintf("%s.webhook_secret[%d]", key, j), "too short (at least 8 characters)")
			}
		}
	}
	seen := map[string]bool{}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		key := fmt.Sprintf("repositories[%d]", i)
		r.Name = Canonical(r.Name)
		owner, name, ok := strings.Cut(r.Name, "/")
		if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
			bad(key+".name", "%q is not owner/name", r.Name)
		}
		if seen[r.Name] {
			bad(key+".name", "%q is listed twice (names are case-insensitive)", r.Name)
		}
		seen[r.Name] = true
		for j, b := range r.Branches {
			if _, err := path.Match(b, ""); err != nil || b == "" {
				bad(fmt.Sprintf("%s.branches[%d]", key, j), "%q is not a valid pattern", b)
			}
		}
		if r.CloneURL == "" && ghErr == nil {
			r.CloneURL = c.defaultCloneURL(r.Name)
		}
		if r.CloneURL != "" {
			if u, err := checkRemoteURL(r.CloneURL, insecure); err != nil {
				bad(key+".clone_url", "%v", err)
			} else if r.Token != "" && u.Scheme != "https" {
				bad(key+".token", "the clone URL is not https, and a token is only ever sent over https")
			}
		}
		secrets(key, r.WebhookSecret)
	}
	orgs := map[string]bool{}
	for i := range c.Orgs {
		o := &c.Orgs[i]
		key := fmt.Sprintf("orgs[%d]", i)
		o.Name = Canonical(o.Name)
		if o.Name == "" || strings.Contains(o.Name, "/") {
			bad(key+".name", "%q is not an organisation login", o.Name)
		}
		if orgs[o.Name] {
			bad(key+".name", "%q is listed twice (names are case-insensitive)", o.Name)
		}
		orgs[o.Name] = true
		if len(o.WebhookSecret) == 0 {
			bad(key+".webhook_secret", "required")
		}
		secrets(key, o.WebhookSecret)
	}
}

// checkRemoteURL accepts an https URL, or, when insecure is allowed, a plain http or file:// URL or
// an absolute local path. A URL with credentials in it is refused: they belong in a token, which is
// never shown. Errors never quote the URL, in case it carries one anyway.
func checkRemoteURL(raw string, insecure bool) (*url.URL, error) {
	const allow = " (plain http, file:// and local paths need git.allow_insecure_urls, SLIPWAY_GIT_ALLOW_INSECURE_URLS)"
	if filepath.IsAbs(raw) {
		if !insecure {
			return nil, errors.New("a local path, not an https URL" + allow)
		}
		return &url.URL{Scheme: "file", Path: raw}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL (value not shown)")
	}
	if u.User != nil {
		return nil, errors.New("must not contain credentials (value not shown): give the token in token or git.token")
	}
	switch u.Scheme {
	case "https":
	case "http", "file":
		if !insecure {
			return nil, fmt.Errorf("a %s URL, not https%s", u.Scheme, allow)
		}
	default:
		return nil, errors.New("must be an https URL" + allow)
	}
	if u.Scheme != "file" && u.Host == "" || u.Scheme == "file" && u.Path == "" {
		return nil, errors.New("not a URL (value not shown)")
	}
	return u, nil
}
