package pipeline

import (
	"maps"
	"slices"
	"time"
)

// DefaultFilename is where a repository keeps its pipeline file, relative to its root.
const DefaultFilename = ".slipway.yml"

// Target kinds, as written in the file and in policy rules.
const (
	KindECS    = "ecs"
	KindSwarm  = "swarm"
	KindDocker = "docker"
)

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
	// Target is the docker build stage (--target), empty for the last stage.
	Target string `json:"target,omitempty"`
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
	Branch string        `json:"branch"`
	ECS    *ECSTarget    `json:"ecs,omitempty"`
	Swarm  *SwarmTarget  `json:"swarm,omitempty"`
	Docker *DockerTarget `json:"docker,omitempty"`
}

// ECSTarget is an AWS ECS service; the deploy registers a new task definition revision with the
// new image for Container.
type ECSTarget struct {
	// Cluster is a cluster name (not an ARN); Parse sets "default", ECS's own default, when omitted.
	Cluster   string `json:"cluster"`
	Service   string `json:"service"`
	Container string `json:"container"`
}

// SwarmTarget is a Docker Swarm service.
type SwarmTarget struct {
	Service string `json:"service"`
}

// DockerTarget is a container on the server's own Docker engine.
type DockerTarget struct {
	Container string            `json:"container"`
	Ports     []string          `json:"ports,omitempty"`
	Env       map[string]string `json:"env,omitempty"`
	// Network defaults to "host". Docker ignores Ports on the host network.
	Network string `json:"network"`
	// HealthTimeout is how long the target waits for the container to become healthy; zero means
	// the target's own default.
	HealthTimeout time.Duration `json:"health_timeout,omitempty"`
	// Command replaces the image's CMD when not empty.
	Command []string `json:"command,omitempty"`
}

// Kind is the environment's target kind, "" when none is set (which Parse rejects).
func (e *Environment) Kind() string {
	switch {
	case e.ECS != nil:
		return KindECS
	case e.Swarm != nil:
		return KindSwarm
	case e.Docker != nil:
		return KindDocker
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

// Target is one deployment a push asks for: a service rolled out to one environment's target.
// It holds a copy of the target block, so changing it does not change the File.
type Target struct {
	Service     string        `json:"service"`
	Environment string        `json:"environment"`
	Kind        string        `json:"kind"`
	ECS         *ECSTarget    `json:"ecs,omitempty"`
	Swarm       *SwarmTarget  `json:"swarm,omitempty"`
	Docker      *DockerTarget `json:"docker,omitempty"`
}

// Name is what the target is called within its kind, the name policy rules match: "cluster/service"
// for ECS, the service for Swarm, the container for Docker.
func (t Target) Name() string {
	switch {
	case t.ECS != nil:
		return t.ECS.Cluster + "/" + t.ECS.Service
	case t.Swarm != nil:
		return t.Swarm.Service
	case t.Docker != nil:
		return t.Docker.Container
	}
	return ""
}

// Ref is the target as policy rules spell it, like "ecs:prod/api".
func (t Target) Ref() string {
	return t.Kind + ":" + t.Name()
}

func newTarget(s *Service, e *Environment) Target {
	t := Target{Service: s.Name, Environment: e.Name, Kind: e.Kind()}
	switch {
	case e.ECS != nil:
		c := *e.ECS
		t.ECS = &c
	case e.Swarm != nil:
		c := *e.Swarm
		t.Swarm = &c
	case e.Docker != nil:
		c := *e.Docker
		c.Ports = slices.Clone(c.Ports)
		c.Env = maps.Clone(c.Env)
		c.Command = slices.Clone(c.Command)
		t.Docker = &c
	}
	return t
}
