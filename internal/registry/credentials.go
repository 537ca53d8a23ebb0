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

// Invalidator is implemented by Credentials whose logins can go stale before they expire (ECR
// tokens). When a registry refuses a login, Invalidate(host, password) forgets password if it is
// still the login held for host, and reports whether a fresh Lookup may give another; the push or
// digest read is then tried once more, with the login Lookup gives. Static logins never change, so
// Static does not implement it.
type Invalidator interface {
	Invalidate(host, password string) bool
}

// Preparer is implemented by Credentials that make a registry ready before a push to one of its
// repositories: ECR creates the repository when it is missing and the server's config allows it.
type Preparer interface {
	PreparePush(ctx context.Context, host, repository string) error
}
