package pipeline

import (
	"maps"
	"slices"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// DefaultFilename is where a repository keeps its pipeline file, relative to its root.
const DefaultFilename = ".slipway.yml"

// File is a parsed pipeline file. Parse fills every default, cleans every path and sorts services
// and environments by name, so consumers read values as they are used. The types are stored as
// jsonb, hence the JSON tags.
type File struct {
	Services []Service `json:"services"`

	// name and pos remember where things were in the source so that CheckInRepo, run later on
	// the same value, can still point at a line. They are lost in a JSON round trip, which only
	// costs line numbers.
	name string
	pos  map[string]position
}

// Service is one image the repository builds, and where it is deployed.
type Service struct {
	Name string `json:"name"`
	// Paths are globs over repository-relative file paths; a push deploys the service only if it
	// changed a matching file. Empty means every push.
	Paths []string `json:"paths,omitempty"`
	// Dockerfile and Context are repository-relative and cleaned; Context defaults to "." and
	// Dockerfile to Context/Dockerfile.
	Dockerfile string            `json:"dockerfile"`
	Context    string            `json:"context"`
	BuildArgs  map[string]string `json:"build_args,omitempty"`
	// Stage is the docker build stage (the file's target key, docker build --target), empty for
	// the last stage.
	Stage string `json:"stage,omitempty"`
	// Image is the repository to push to, without tag or digest: the server adds both.
	Image        string        `json:"image"`
	Environments []Environment `json:"environments"`
}

// Environment is one place a service is deployed to, from pushes to matching branches. Exactly one
// of ECS, Swarm and Docker is set.
type Environment struct {
	Name string `json:"name"`
	// Branch is a glob over branch names (without refs/heads/): * and ? stay within one
	// /-separated segment, ** spans segments.
	Branch string               `json:"branch"`
	ECS    *deploy.ECSService   `json:"ecs,omitempty"`
	Swarm  *deploy.SwarmService `json:"swarm,omitempty"`
	Docker *deploy.Container    `json:"docker,omitempty"`
}

// Platform is the platform the environment deploys to, "" when none is set (which Parse rejects).
func (e *Environment) Platform() string {
	switch {
	case e.ECS != nil:
		return deploy.PlatformECS
	case e.Swarm != nil:
		return deploy.PlatformSwarm
	case e.Docker != nil:
		return deploy.PlatformDocker
	}
	return ""
}

// Service returns the service called name, or nil.
func (f *File) Service(name string) *Service {
	for i := range f.Services {
		if f.Services[i].Name == name {
			return &f.Services[i]
		}
	}
	return nil
}

// spec is the deployment of service s to environment e. It holds copies, so changing it does
// not change the File.
func spec(s *Service, e *Environment) deploy.Spec {
	d := deploy.Destination{Service: s.Name, Environment: e.Name, Platform: e.Platform()}
	switch {
	case e.ECS != nil:
		c := *e.ECS
		d.ECS = &c
	case e.Swarm != nil:
		c := *e.Swarm
		d.Swarm = &c
	case e.Docker != nil:
		c := *e.Docker
		c.Ports = slices.Clone(c.Ports)
		c.Env = maps.Clone(c.Env)
		c.Command = slices.Clone(c.Command)
		d.Docker = &c
	}
	return deploy.Spec{Destination: d, Build: deploy.Build{Image: s.Image, Dockerfile: s.Dockerfile,
		Context: s.Context, BuildArgs: maps.Clone(s.BuildArgs), Stage: s.Stage}}
}
