package pipeline

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// ErrNotAllowed is wrapped by the error Policy.Check returns when no rule allows a deployment.
var ErrNotAllowed = errors.New("not allowed by the server's deploy policy")

// Policy says which repositories may deploy to which targets. It lives in the server's config,
// never in a repository: a pipeline file names its targets, and the policy decides whether that
// repository may touch them.
//
// The zero Policy allows nothing. AllowAll allows everything, for demos and single-repo servers
// where the repository is as trusted as the server's config; it is an explicit switch so that a
// missing policy section fails closed.
type Policy struct {
	AllowAll bool   `json:"allow_all" yaml:"allow_all"`
	Rules    []Rule `json:"rules" yaml:"rules"`
	// Adopt lists targets ("kind:name" patterns, as in rules) that Slipway may take over although
	// it did not create them: a container made by hand, a Swarm or ECS service made by its
	// admins. Once adopted, a target is labelled with the repository that deployed it, and no
	// other repository may change it. Without a match, such a target is refused, even under
	// AllowAll.
	Adopt []string `json:"adopt" yaml:"adopt"`
	// Registries are the registry hosts the server's config names (path.Match patterns, like
	// "*.dkr.ecr.eu-west-1.amazonaws.com"): a rule without Images allows images on these only.
	// The config fills it; it is not a key of its own.
	Registries []string `json:"-" yaml:"-"`
}

// Adopts reports whether the policy lets Slipway take over t when it finds it unowned.
func (p Policy) Adopts(t deploy.Destination) bool {
	for _, pat := range p.Adopt {
		if matchTarget(pat, t) {
			return true
		}
	}
	return false
}

// Rule allows the repositories matching Repo to deploy to the targets matching any of Targets,
// and to push to (and deploy) the image repositories matching any of Images.
//
// Repo is "owner/name" or a path.Match glob like "owner/*" ("*/*" for every repository), compared
// case-insensitively as GitHub does. A target pattern is "kind:name" with kind ecs, swarm or
// docker and name a path.Match glob over "cluster/service" for ecs (so "ecs:prod/*", and
// "ecs:*/*" for every ECS service), the service for swarm and the container for docker.
//
// An image pattern is "host[:port]/path", a glob as the pipeline file's paths are (* within a
// segment, ** across them): "registry.example.com/acme/*", "registry.example.com/acme/**". It
// must name the registry host, since the host is what a pipeline file could otherwise point the
// server at; Docker Hub is docker.io (an image "acme/api" is docker.io/acme/api). A rule without
// Images allows the images on the registries the server's config names (Policy.Registries), so a
// pipeline file can never make the server contact a host of its own choosing.
type Rule struct {
	Repo    string   `json:"repo" yaml:"repo"`
	Targets []string `json:"targets" yaml:"targets"`
	Images  []string `json:"images,omitempty" yaml:"images"`
}

// Validate reports malformed rules, so that a bad config stops the server at start-up instead
// of silently denying (Check treats a malformed pattern as matching nothing).
func (p Policy) Validate() error {
	var errs []error
	for i, r := range p.Rules {
		if err := validRepoPattern(r.Repo); err != nil {
			errs = append(errs, fmt.Errorf("policy rule %d: repo: %w", i+1, err))
		}
		if len(r.Targets) == 0 {
			errs = append(errs, fmt.Errorf("policy rule %d (%s): targets is empty", i+1, r.Repo))
		}
		for _, t := range r.Targets {
			if err := validTargetPattern(t); err != nil {
				errs = append(errs, fmt.Errorf("policy rule %d (%s): target %q: %w", i+1, r.Repo, t, err))
			}
		}
	}
	for i, r := range p.Rules {
		for _, im := range r.Images {
			if err := validImagePattern(im); err != nil {
				errs = append(errs, fmt.Errorf("policy rule %d (%s): image %q: %w", i+1, r.Repo, im, err))
			}
		}
	}
	for _, t := range p.Adopt {
		if err := validTargetPattern(t); err != nil {
			errs = append(errs, fmt.Errorf("policy adopt %q: %w", t, err))
		}
	}
	return errors.Join(errs...)
}

// Check returns nil if repo may deploy t, and otherwise an error wrapping ErrNotAllowed that
// names the repository, service, environment and target, fit to show in the deployment record.
func (p Policy) Check(repo string, t deploy.Destination) error {
	if p.AllowAll {
		return nil
	}
	if t.Platform != "" && t.Name() != "" {
		for _, r := range p.Rules {
			if r.allows(repo, t) {
				return nil
			}
		}
	}
	return fmt.Errorf("repository %s may not deploy service %s (environment %s) to %s: %w",
		repo, t.Service, t.Environment, t.Ref(), ErrNotAllowed)
}

// CheckImage returns nil if repo may push to and deploy the image repository image (a pipeline
// file's image, without tag), and otherwise an error wrapping ErrNotAllowed that names the
// repository, the image and its registry host. A rule of repo without images allows the images
// on the configured registries.
func (p Policy) CheckImage(repo, image string) error {
	if p.AllowAll {
		return nil
	}
	name := normalizeImage(image)
	host, _, _ := strings.Cut(name, "/")
	for _, r := range p.Rules {
		if !r.matchesRepo(repo) {
			continue
		}
		if len(r.Images) == 0 && p.knownRegistry(host) {
			return nil
		}
		for _, pat := range r.Images {
			if validImagePattern(pat) == nil && matchGlob(strings.ToLower(pat), name) {
				return nil
			}
		}
	}
	return fmt.Errorf("repository %s may not push image %s (registry %s: name it in the rule's images, or in registries[]): %w",
		repo, image, host, ErrNotAllowed)
}

func (p Policy) knownRegistry(host string) bool {
	for _, pat := range p.Registries {
		if ok, _ := path.Match(strings.ToLower(pat), host); ok {
			return true
		}
	}
	return false
}

// CheckSpec checks what a deployment would do: repo deploying to spec's destination, with an
// image of spec's image repository.
func (p Policy) CheckSpec(repo string, spec deploy.Spec) error {
	if err := p.Check(repo, spec.Destination); err != nil {
		return err
	}
	return p.CheckImage(repo, spec.Build.Image)
}

func (r Rule) matchesRepo(repo string) bool {
	if validRepoPattern(r.Repo) != nil {
		return false
	}
	ok, _ := path.Match(strings.ToLower(r.Repo), strings.ToLower(repo))
	return ok
}

func (r Rule) allows(repo string, t deploy.Destination) bool {
	if !r.matchesRepo(repo) {
		return false
	}
	for _, pat := range r.Targets {
		if matchTarget(pat, t) {
			return true
		}
	}
	return false
}

// matchTarget reports whether the "kind:name" pattern pat matches t; a malformed one matches
// nothing.
func matchTarget(pat string, t deploy.Destination) bool {
	kind, name, _ := strings.Cut(pat, ":")
	if kind != t.Platform || validTargetPattern(pat) != nil {
		return false
	}
	ok, _ := path.Match(name, t.Name())
	return ok
}

func validRepoPattern(p string) error {
	owner, name, ok := strings.Cut(p, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("%q is not owner/name (globs allowed, like owner/* or */*)", p)
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q: invalid glob syntax", p)
	}
	return nil
}

func validTargetPattern(p string) error {
	kind, name, ok := strings.Cut(p, ":")
	if !ok || name == "" {
		return errors.New(`must be "kind:name", like ecs:prod/api, swarm:* or docker:web`)
	}
	switch kind {
	case deploy.PlatformECS:
		cluster, service, ok := strings.Cut(name, "/")
		if !ok || cluster == "" || service == "" || strings.Contains(service, "/") {
			// "ecs:*" would match nothing, since * does not cross the /; say so instead.
			return errors.New(`an ecs target is "cluster/service", like ecs:prod/* or ecs:*/*`)
		}
	case deploy.PlatformSwarm, deploy.PlatformDocker:
		if strings.Contains(name, "/") {
			return fmt.Errorf("a %s target name has no /", kind)
		}
	default:
		return fmt.Errorf("unknown kind %q (want ecs, swarm or docker)", kind)
	}
	if _, err := path.Match(name, ""); err != nil {
		return errors.New("invalid glob syntax")
	}
	return nil
}

// normalizeImage spells an image repository as Docker resolves it, lower-cased: with its
// registry host, docker.io when it names none (its first segment then has no dot or port and is
// not localhost), and Docker Hub's library/ for a one-segment name.
func normalizeImage(image string) string {
	image = strings.ToLower(image)
	first, rest, ok := strings.Cut(image, "/")
	switch {
	case !ok:
		return "docker.io/library/" + image
	case strings.ContainsAny(first, ".:") || first == "localhost":
		return image
	default:
		return "docker.io/" + first + "/" + rest
	}
}

func validImagePattern(p string) error {
	host, rest, ok := strings.Cut(p, "/")
	if !ok || rest == "" || !(strings.ContainsAny(host, ".:") || host == "localhost") || strings.Trim(host, "*?.:") == "" {
		return errors.New(`must start with a registry host, like registry.example.com/acme/* (docker.io/… for Docker Hub)`)
	}
	if strings.Contains(rest, ":") || strings.Contains(rest, "@") {
		return errors.New("is an image repository: no tag or digest")
	}
	return validGlob(p)
}
