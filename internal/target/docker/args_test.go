package docker

import (
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/pipeline"
)

const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestRunArgs(t *testing.T) {
	image := "registry.example/api" + digest
	labels := []string{"--label", "slipway.deployment=42", "--label", "slipway.service=api",
		"--label", "slipway.environment=prod", "--restart", "no", image}
	tests := []struct {
		name string
		spec pipeline.DockerTarget
		want []string
	}{
		{
			name: "host network by default, ports left out",
			spec: pipeline.DockerTarget{Container: "api", Ports: []string{"8080:80"}},
			want: slices.Concat([]string{"run", "--detach", "--name", "api", "--network", "host"}, labels),
		},
		{
			name: "ports on another network",
			spec: pipeline.DockerTarget{Container: "api", Network: "web", Ports: []string{"8080:80", "127.0.0.1:9090:90"}},
			want: slices.Concat([]string{"run", "--detach", "--name", "api", "--network", "web",
				"--publish", "8080:80", "--publish", "127.0.0.1:9090:90"}, labels),
		},
		{
			name: "env sorted, values verbatim, command after the image",
			spec: pipeline.DockerTarget{
				Container: "api",
				Env:       map[string]string{"Z": "last", "A": "$(rm -rf /); echo 'x' \"y\"", "M": "a=b"},
				Command:   []string{"serve", "--port", "80"},
			},
			want: slices.Concat([]string{"run", "--detach", "--name", "api", "--network", "host",
				"--env", "A=$(rm -rf /); echo 'x' \"y\"", "--env", "M=a=b", "--env", "Z=last"},
				labels, []string{"serve", "--port", "80"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := deploy.Rollout{DeploymentID: 42, Service: "api", Environment: "prod", Image: image}
			got := runArgs("api", &tt.spec, r)
			if !slices.Equal(got, tt.want) {
				t.Errorf("runArgs:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestCheckRollout(t *testing.T) {
	good := "127.0.0.1:5000/api" + digest
	tests := []struct {
		name    string
		r       deploy.Rollout
		wantErr string
	}{
		{name: "ok", r: rollout("api", good)},
		{name: "not a docker target", r: deploy.Rollout{Image: good, Target: pipeline.Target{Kind: "swarm", Swarm: &pipeline.SwarmTarget{Service: "x"}}}, wantErr: "not a docker target"},
		{name: "name like a flag", r: rollout("--privileged", good), wantErr: "invalid container name"},
		{name: "empty name", r: rollout("", good), wantErr: "invalid container name"},
		{name: "name with a space", r: rollout("a b", good), wantErr: "invalid container name"},
		{name: "tag, no digest", r: rollout("api", "127.0.0.1:5000/api:latest"), wantErr: "not pinned by digest"},
		{name: "image like a flag", r: rollout("api", "-v/:/host"+digest), wantErr: "not pinned by digest"},
		{name: "short digest", r: rollout("api", "api@sha256:abc"), wantErr: "not pinned by digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkRollout(tt.r)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func rollout(container, image string) deploy.Rollout {
	return deploy.Rollout{
		DeploymentID: 1, Service: "api", Environment: "prod", Image: image,
		Target: pipeline.Target{Kind: pipeline.KindDocker, Docker: &pipeline.DockerTarget{Container: container}},
	}
}
