package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
	"github.com/slipway-dev/slipway/internal/statedir"
)

// pushedRE matches docker push's last line: "latest: digest: sha256:… size: 528".
var pushedRE = regexp.MustCompile(`digest: (sha256:[0-9a-f]{64}) size: \d+`)

// Push implements deploy.Registry: docker push with a DOCKER_CONFIG of its own, holding only the
// credentials of ref's registry, and the digest docker reported, checked against the registry.
func (r *Registry) Push(ctx context.Context, ref string, log deploy.LogFunc) (string, error) {
	if log == nil {
		log = func(string, string) {}
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	d, err := r.push(ctx, ref, log)
	if err != nil {
		r.logger.InfoContext(ctx, "docker push failed", "ref", ref, "err", err)
		return "", fmt.Errorf("pushing %s: %w", ref, err)
	}
	r.logger.InfoContext(ctx, "docker push done", "ref", ref, "digest", d,
		"elapsed", time.Since(start).Round(time.Millisecond))
	return d, nil
}

func (r *Registry) push(ctx context.Context, ref string, log deploy.LogFunc) (string, error) {
	p, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	if p.Tag == "" {
		return "", fmt.Errorf("image reference %q has no tag to push", ref)
	}
	if pr, ok := r.creds.(Preparer); ok {
		if err := pr.PreparePush(ctx, p.Host, p.Repository); err != nil {
			return "", err
		}
	}
	reported, password, err := r.dockerPush(ctx, ref, p.Host, log)
	if err != nil && refusedLogin(err) && r.invalidate(ctx, p.Host, password) {
		log("push", "the registry refused the login: pushing again with a fresh one")
		reported, _, err = r.dockerPush(ctx, ref, p.Host, log)
	}
	if err != nil {
		return "", err
	}

	// docker push says which digest it uploaded; the registry says what the tag points to now,
	// which is what a target will pull. They differ only if someone pushed the tag meanwhile.
	got, found, err := r.digest(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("confirming the pushed digest: %w", err)
	}
	if !found {
		return "", fmt.Errorf("registry %s has no %s after the push", p.Host, ref)
	}
	if reported != "" && reported != got {
		return "", fmt.Errorf("docker push reported %s but the registry's tag points to %s", reported, got)
	}
	return got, nil
}

// dockerPush runs docker push once with host's login as the credentials give it now. It returns
// the digest docker reported and the password it was given ("" for none).
func (r *Registry) dockerPush(ctx context.Context, ref, host string, log deploy.LogFunc) (reported, password string, err error) {
	user, password, ok, err := r.creds.Lookup(ctx, host)
	if err != nil {
		return "", "", fmt.Errorf("looking up credentials for %s: %w", host, err)
	}
	var auth string
	if ok {
		auth = base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	} else {
		password = ""
	}

	dir, err := writeDockerConfig(r.configs, host, auth)
	if err != nil {
		return "", "", err
	}
	// Gone on every return: success, failure, ctx done (dockercli.Run has waited for docker by
	// then). A crash leaves it to the next New's sweep of the state dir.
	defer os.RemoveAll(dir)

	var mu sync.Mutex
	set := map[string]string{
		"DOCKER_CONFIG":    dir,
		"DOCKER_CONTEXT":   "", // contexts live in DOCKER_CONFIG; ours has none
		"DOCKER_CLI_HINTS": "false",
	}
	err = dockercli.Run(ctx, dockercli.Cmd{
		Binary: r.docker,
		Args:   []string{"push", ref},
		Env:    r.cfg.Engine.Env(set),
		Scrub:  scrubber(password, auth),
		Line: func(line string) {
			if m := pushedRE.FindStringSubmatch(line); m != nil {
				mu.Lock()
				reported = m[1]
				mu.Unlock()
			}
			log("push", line)
		},
	})
	mu.Lock()
	defer mu.Unlock()
	return reported, password, err // a *dockercli.Error, which says "docker push"
}

// refusedLogin reports whether docker push failed because the registry refused its login (a 401,
// or ECR's word for an expired token), rather than for a missing permission or anything else.
func refusedLogin(err error) bool {
	derr, ok := errors.AsType[*dockercli.Error](err)
	if !ok {
		return false
	}
	out := strings.ToLower(derr.Output)
	for _, s := range []string{"unauthorized", "no basic auth credentials", "authentication required", "authorization token has expired"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// writeDockerConfig makes a private DOCKER_CONFIG directory in the state dir holding only
// config.json: the server's credentials for this one registry, never the host user's ~/.docker
// and its other logins or credential helpers. The caller removes it.
func writeDockerConfig(state *statedir.Dir, host, auth string) (string, error) {
	dir, err := state.MkdirTemp("push-") // 0700
	if err != nil {
		return "", fmt.Errorf("creating docker config dir: %w", err)
	}
	auths := map[string]map[string]string{}
	if auth != "" {
		auths[authKey(host)] = map[string]string{"auth": auth}
	}
	data, err := json.Marshal(map[string]any{"auths": auths})
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "config.json"), data, 0o600)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("writing docker config: %w", err)
	}
	return dir, nil
}

// authKey is the key docker looks credentials up under: the host, except for Docker Hub, which
// keeps its historical index URL.
func authKey(host string) string {
	if host == DockerHub {
		return "https://index.docker.io/v1/"
	}
	return host
}

// scrubber cuts the password and the encoded login out of docker's output, should it ever echo
// either.
func scrubber(secrets ...string) func(string) string {
	var pairs []string
	for _, s := range secrets {
		if s != "" {
			pairs = append(pairs, s, "<redacted>")
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	rep := strings.NewReplacer(pairs...)
	return rep.Replace
}
