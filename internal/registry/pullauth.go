package registry

import (
	"context"
	"fmt"

	engineregistry "github.com/docker/docker/api/types/registry"
)

// PullAuth returns what an engine needs to pull ref: the login the credentials give for its host,
// encoded as the Engine API's X-Registry-Auth (an image pull; a Swarm service update, which hands
// it to the nodes that run the tasks). It is "" when the host has no login: the pull is anonymous.
// The value holds a password: it goes in a request header, never in a log or an error.
func (r *Registry) PullAuth(ctx context.Context, ref string) (string, error) {
	p, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	user, password, ok, err := r.creds.Lookup(ctx, p.Host)
	if err != nil {
		return "", fmt.Errorf("looking up credentials for %s: %w", p.Host, err)
	}
	if !ok {
		return "", nil
	}
	return engineregistry.EncodeAuthConfig(engineregistry.AuthConfig{
		Username: user, Password: password, ServerAddress: p.Host,
	})
}
