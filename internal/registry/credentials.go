package registry

import "context"

// Credentials finds the user and password for a registry host ("host[:port]", DockerHub for Docker
// Hub). A provider that fetches tokens (ECR) plugs in here; ok is false for a host it has nothing
// for, which is not an error: the registry may allow anonymous access.
type Credentials interface {
	Lookup(ctx context.Context, host string) (user, password string, ok bool, err error)
}

// Login is one registry's user and password.
type Login struct {
	User     string
	Password string
}

// String never shows the password, so a Login printed by mistake leaks nothing.
func (l Login) String() string { return l.User + ":<redacted>" }

// GoString is String for %#v.
func (l Login) GoString() string { return l.String() }

// Static is the credentials of the server's config: registry host → login.
type Static map[string]Login

// Lookup implements Credentials.
func (s Static) Lookup(_ context.Context, host string) (string, string, bool, error) {
	l, ok := s[host]
	if !ok && host == DockerHub {
		// Operators write "docker.io" for Docker Hub.
		l, ok = s["docker.io"]
	}
	if !ok {
		return "", "", false, nil
	}
	return l.User, l.Password, true, nil
}
