package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
)

func TestPolicyCheck(t *testing.T) {
	ecs := deploy.Destination{Service: "api", Environment: "production", Platform: deploy.PlatformECS, ECS: &deploy.ECSService{Cluster: "prod", Service: "api", Container: "api"}}
	ecsStaging := deploy.Destination{Service: "api", Environment: "staging", Platform: deploy.PlatformECS, ECS: &deploy.ECSService{Cluster: "staging", Service: "api", Container: "api"}}
	swarm := deploy.Destination{Service: "worker", Environment: "production", Platform: deploy.PlatformSwarm, Swarm: &deploy.SwarmService{Service: "worker"}}
	docker := deploy.Destination{Service: "web", Environment: "demo", Platform: deploy.PlatformDocker, Docker: &deploy.Container{Container: "web"}}

	policy := Policy{Rules: []Rule{
		{Repo: "acme/shop", Targets: []string{"ecs:prod/*", "swarm:*"}},
		{Repo: "acme/*", Targets: []string{"ecs:staging/*"}},
		{Repo: "*/*", Targets: []string{"docker:web"}},
		{Repo: "broken", Targets: []string{"swarm:*"}}, // malformed: matches nothing
	}}
	tests := []struct {
		name   string
		policy Policy
		repo   string
		target deploy.Destination
		ok     bool
	}{
		{"exact repo, ecs glob", policy, "acme/shop", ecs, true},
		{"repo compared case-insensitively", policy, "Acme/Shop", ecs, true},
		{"other repo of the owner may not use prod", policy, "acme/blog", ecs, false},
		{"owner glob", policy, "acme/blog", ecsStaging, true},
		{"owner glob does not match other owners", policy, "evil/shop", ecsStaging, false},
		{"swarm glob", policy, "acme/shop", swarm, true},
		{"swarm not allowed for other repos", policy, "acme/blog", swarm, false},
		{"any repo to docker:web", policy, "someone/else", docker, true},
		{"kind must match", Policy{Rules: []Rule{{Repo: "a/b", Targets: []string{"swarm:web"}}}}, "a/b", docker, false},
		{"empty policy allows nothing", Policy{}, "acme/shop", docker, false},
		{"allow_all", Policy{AllowAll: true}, "acme/shop", ecs, true},
		{"ecs:* does not match cluster/service", Policy{Rules: []Rule{{Repo: "a/b", Targets: []string{"ecs:*"}}}}, "a/b", ecs, false},
		{"ecs:*/*", Policy{Rules: []Rule{{Repo: "a/b", Targets: []string{"ecs:*/*"}}}}, "a/b", ecs, true},
		{"target without a block", Policy{Rules: []Rule{{Repo: "a/b", Targets: []string{"docker:*"}}}}, "a/b", deploy.Destination{Platform: deploy.PlatformDocker}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.Check(tt.repo, tt.target)
			if tt.ok {
				if err != nil {
					t.Errorf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check allowed it")
			}
			if !errors.Is(err, ErrNotAllowed) {
				t.Errorf("error does not wrap ErrNotAllowed: %v", err)
			}
			for _, s := range []string{tt.repo, tt.target.Service, tt.target.Environment, tt.target.Ref()} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

func TestPolicyCheckMessage(t *testing.T) {
	err := Policy{}.Check("acme/shop", deploy.Destination{Service: "api", Environment: "production", Platform: deploy.PlatformECS, ECS: &deploy.ECSService{Cluster: "prod", Service: "api", Container: "api"}})
	want := "repository acme/shop may not deploy service api (environment production) to ecs:prod/api: not allowed by the server's deploy policy"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want string // "" for valid
	}{
		{"ok", Rule{Repo: "acme/shop", Targets: []string{"ecs:prod/*", "swarm:*", "docker:web-?"}}, ""},
		{"repo glob", Rule{Repo: "*/*", Targets: []string{"docker:*"}}, ""},
		{"repo without owner", Rule{Repo: "shop", Targets: []string{"docker:*"}}, "not owner/name"},
		{"repo with two slashes", Rule{Repo: "a/b/c", Targets: []string{"docker:*"}}, "not owner/name"},
		{"repo bad glob", Rule{Repo: "a/[", Targets: []string{"docker:*"}}, "invalid glob"},
		{"no targets", Rule{Repo: "a/b"}, "targets is empty"},
		{"no kind", Rule{Repo: "a/b", Targets: []string{"web"}}, `must be "kind:name"`},
		{"unknown kind", Rule{Repo: "a/b", Targets: []string{"k8s:web"}}, `unknown kind "k8s"`},
		{"ecs without slash", Rule{Repo: "a/b", Targets: []string{"ecs:*"}}, "cluster/service"},
		{"swarm with slash", Rule{Repo: "a/b", Targets: []string{"swarm:a/b"}}, "has no /"},
		{"bad name glob", Rule{Repo: "a/b", Targets: []string{"docker:[x"}}, "invalid glob"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Policy{Rules: []Rule{tt.rule}}.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPolicyAdopts(t *testing.T) {
	p := Policy{AllowAll: true, Adopt: []string{"swarm:*", "docker:legacy-?"}}
	for _, tt := range []struct {
		dest deploy.Destination
		want bool
	}{
		{deploy.Destination{Platform: deploy.PlatformSwarm, Swarm: &deploy.SwarmService{Service: "api"}}, true},
		{deploy.Destination{Platform: deploy.PlatformDocker, Docker: &deploy.Container{Container: "legacy-1"}}, true},
		{deploy.Destination{Platform: deploy.PlatformDocker, Docker: &deploy.Container{Container: "web"}}, false},
		{deploy.Destination{Platform: deploy.PlatformECS, ECS: &deploy.ECSService{Cluster: "c", Service: "s"}}, false},
	} {
		if got := p.Adopts(tt.dest); got != tt.want {
			t.Errorf("Adopts(%s) = %v, want %v", tt.dest.Ref(), got, tt.want)
		}
	}
	if (Policy{AllowAll: true}).Adopts(deploy.Destination{Platform: deploy.PlatformSwarm, Swarm: &deploy.SwarmService{Service: "api"}}) {
		t.Error("allow_all adopts: it must not")
	}
	if err := (Policy{Adopt: []string{"k8s:x"}}).Validate(); err == nil {
		t.Error("a malformed adopt pattern was accepted")
	}
}

// Issue 7, item 11: the policy did not say which image repositories a repository may push to,
// so a pipeline file could make the server contact any registry host. A rule's images limit
// them; allow_all still allows every image, and a rule without images those on the registries the
// server's config names, and no other.
func TestPolicyCheckImage(t *testing.T) {
	policy := Policy{Rules: []Rule{
		{Repo: "acme/shop", Targets: []string{"swarm:*"}, Images: []string{"registry.example.com/acme/*", "registry.example.com:5000/shop/**"}},
		{Repo: "acme/*", Targets: []string{"docker:*"}, Images: []string{"docker.io/acme/*"}},
		{Repo: "legacy/app", Targets: []string{"docker:*"}},
	}, Registries: []string{"registry.example.com", "*.dkr.ecr.eu-west-1.amazonaws.com"}}
	tests := []struct {
		name   string
		policy Policy
		repo   string
		image  string
		ok     bool
	}{
		{"listed host and path", policy, "acme/shop", "registry.example.com/acme/api", true},
		{"host compared case-insensitively", policy, "acme/shop", "Registry.Example.COM/acme/api", true},
		{"* stays within a path segment", policy, "acme/shop", "registry.example.com/acme/team/api", false},
		{"** crosses segments", policy, "acme/shop", "registry.example.com:5000/shop/a/b", true},
		{"port is part of the host", policy, "acme/shop", "registry.example.com:5001/shop/a", false},
		{"another registry host", policy, "acme/shop", "evil.example.net/acme/api", false},
		{"an internal address", policy, "acme/shop", "169.254.169.254/acme/api", false},
		{"a host prefix is not the host", policy, "acme/shop", "registry.example.com.evil.net/acme/api", false},
		{"Docker Hub short names are docker.io", policy, "acme/blog", "acme/blog", true},
		{"Docker Hub of another owner", policy, "acme/blog", "evil/blog", false},
		{"a rule of another repository does not count", policy, "acme/blog", "registry.example.com/acme/api", false},
		{"repository with no rule", policy, "other/repo", "docker.io/acme/x", false},
		{"rule without images, a configured registry", policy, "legacy/app", "registry.example.com/x", true},
		{"rule without images, ECR of the region", policy, "legacy/app", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x", true},
		{"rule without images, ECR of another region", policy, "legacy/app", "123456789012.dkr.ecr.us-east-1.amazonaws.com/x", false},
		{"rule without images, any other host", policy, "legacy/app", "anywhere.example.org/x", false},
		{"allow_all", Policy{AllowAll: true}, "acme/shop", "evil.example.net/x", true},
		{"empty policy", Policy{}, "acme/shop", "registry.example.com/acme/api", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.policy.CheckImage(tt.repo, tt.image)
			if tt.ok {
				if err != nil {
					t.Errorf("CheckImage: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckImage allowed it")
			}
			if !errors.Is(err, ErrNotAllowed) {
				t.Errorf("error does not wrap ErrNotAllowed: %v", err)
			}
			for _, s := range []string{tt.repo, tt.image} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

func TestPolicyValidateImages(t *testing.T) {
	for pattern, want := range map[string]string{
		"registry.example.com/acme/*":   "",
		"*.example.com/acme/**":         "",
		"localhost:5000/**":             "",
		"docker.io/library/*":           "",
		"acme/*":                        "registry host",
		"*/acme/*":                      "registry host",
		"**":                            "registry host",
		"registry.example.com":          "registry host",
		"registry.example.com/[":        "invalid glob",
		"registry.example.com/a**/b":    "whole path segment",
		"registry.example.com/acme/x:1": "tag",
	} {
		err := Policy{Rules: []Rule{{Repo: "a/b", Targets: []string{"docker:*"}, Images: []string{pattern}}}}.Validate()
		switch {
		case want == "" && err != nil:
			t.Errorf("%s: %v", pattern, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%s: Validate = %v, want %q", pattern, err, want)
		}
	}
}
