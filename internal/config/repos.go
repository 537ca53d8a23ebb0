package config

import (
	"path"
	"strings"
)

// Repos matches pushes against the configured repositories.
type Repos []Repository

// MatchPush reports whether a push to repo's branch may deploy; see webhook.Repositories.
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

// Token returns the git token for repo: its own, else the default.
func (c *Config) Token(repo string) string {
	for _, r := range c.Repositories {
		if strings.EqualFold(r.Name, repo) && r.Token != "" {
			return r.Token.Reveal()
		}
	}
	return c.Git.Token.Reveal()
}
