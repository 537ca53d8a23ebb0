package deploy

import (
	"context"
	"time"
)

// Platforms a service is deployed to, as written in the pipeline file and in policy rules.
const (
	PlatformECS    = "ecs"
	PlatformSwarm  = "swarm"
	PlatformDocker = "docker"
)

// Spec is everything one deployment needs, fixed when its push is planned: how to build the image
// and where to roll it out. Execution never reads the pipeline file again. It is stored as the
// deployment's spec column (jsonb) and returned by the API as it is.
type Spec struct {
	Build       Build       `json:"build"`
	Destination Destination `json:"destination"`
	// RollbackOf is set on a rollback or a redeploy: the deployment whose image goes live again.
	// Nothing is checked out or built.
	RollbackOf int64 `json:"rollback_of,omitempty"`
}

// Build is how a service's image is built from a checkout.
type Build struct {
	// Image is the repository to push to, without tag or digest: the server adds both.
	Image string `json:"image"`
	// Dockerfile and Context are repository-relative and cleaned.
	Dockerfile string            `json:"dockerfile"`
	Context    string            `json:"context"`
	BuildArgs  map[string]string `json:"build_args,omitempty"`
	// Stage is the Dockerfile stage to build (docker build --target), "" for the last one.
	Stage string `json:"stage,omitempty"`
}

// Destination is where one deployment rolls out: a service's environment on one platform.
// Exactly one of ECS, Swarm and Docker is set, the one Platform names.
type Destination struct {
	Service     string        `json:"service"`
	Environment string        `json:"environment"`
	Platform    string        `json:"platform"`
	ECS         *ECSService   `json:"ecs,omitempty"`
	Swarm       *SwarmService `json:"swarm,omitempty"`
	Docker      *Container    `json:"docker,omitempty"`
}

// Name is what the destination is called on its platform, the name policy rules match:
// "cluster/service" for ECS, the service for Swarm, the container for Docker.
func (d Destination) Name() string {
	switch {
	case d.ECS != nil:
		return d.ECS.Cluster + "/" + d.ECS.Service
	case d.Swarm != nil:
		return d.Swarm.Service
	case d.Docker != nil:
		return d.Docker.Container
	}
	return ""
}

// Ref is the destination as policy rules spell it, like "ecs:prod/api".
func (d Destination) Ref() string { return d.Platform + ":" + d.Name() }

// ECSService is an AWS ECS service; a deploy registers a new task definition revision with the
// new image for Container.
type ECSService struct {
	// Cluster is a cluster name (not an ARN); "default", ECS's own default, when omitted.
	Cluster   string `json:"cluster"`
	Service   string `json:"service"`
	Container string `json:"container"`
	// TaskDefinition is set on a rollback only: the task definition ARN recorded for the deployment
	// rolled back to (its Result), which the service is updated to again instead of a new revision.
	TaskDefinition string `json:"task_definition,omitempty"`
}

// RollbackTo is the destination of a rollback to a deployment that went to d and recorded res:
// the same place, going back to the task definition res names.
func (d Destination) RollbackTo(res Result) Destination {
	if d.ECS != nil {
		e := *d.ECS
		e.TaskDefinition = res.TaskDefinitionARN
		d.ECS = &e
	}
	return d
}

// Result is what a deployment's rollout put on its platform, as far as the platform names it.
// It is recorded under the worker's claim as soon as the target knows it, before the target is
// pointed at it, and returned by the API with the deployment.
type Result struct {
	// TaskDefinitionARN is the ECS task definition the deployment put on its service, and
	// PreviousTaskDefinitionARN the one the service named before.
	TaskDefinitionARN         string `json:"task_definition_arn,omitempty"`
	PreviousTaskDefinitionARN string `json:"previous_task_definition_arn,omitempty"`
}

// RecordResult stores res with r's Record, if set.
func (r Rollout) RecordResult(ctx context.Context, res Result) error {
	if r.Record == nil {
		return nil
	}
	return r.Record(ctx, res)
}

// SwarmService is a Docker Swarm service.
type SwarmService struct {
	Service string `json:"service"`
}

// Container is a container on the server's own Docker engine.
type Container struct {
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
