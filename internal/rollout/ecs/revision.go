package ecs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// registration is the input registering a revision of td that runs image in container: td's every
// field as ECS returned it, the read-only ones left out (its ARN, revision, status, requires
// attributes, compatibilities, registration and deregistration times), and its tags but those
// under the reserved aws: prefix, which ECS sets itself and refuses to take. td is not changed.
func registration(td *ecstypes.TaskDefinition, tags []ecstypes.Tag, container, image string) (*awsecs.RegisterTaskDefinitionInput, error) {
	containers := slices.Clone(td.ContainerDefinitions)
	i := slices.IndexFunc(containers, func(c ecstypes.ContainerDefinition) bool { return aws.ToString(c.Name) == container })
	if i < 0 {
		names := make([]string, len(containers))
		for j, c := range containers {
			names[j] = aws.ToString(c.Name)
		}
		return nil, fmt.Errorf("task definition %s has no container %q (its containers: %s): check the container the pipeline file names",
			short(aws.ToString(td.TaskDefinitionArn)), container, strings.Join(names, ", "))
	}
	containers[i].Image = aws.String(image)
	var keep []ecstypes.Tag
	for _, tag := range tags {
		if !strings.HasPrefix(strings.ToLower(aws.ToString(tag.Key)), "aws:") {
			keep = append(keep, tag)
		}
	}
	return &awsecs.RegisterTaskDefinitionInput{
		ContainerDefinitions: containers,
		Family:               td.Family,
		Cpu:                  td.Cpu,
		EnableFaultInjection: td.EnableFaultInjection,
		EphemeralStorage:     td.EphemeralStorage,
		ExecutionRoleArn:     td.ExecutionRoleArn,
		//lint:ignore SA1019 a field the live revision may still carry is kept, as every other is
		InferenceAccelerators:         td.InferenceAccelerators,
		IpcMode:                       td.IpcMode,
		Memory:                        td.Memory,
		NetworkMode:                   td.NetworkMode,
		PidMode:                       td.PidMode,
		PlacementConstraints:          td.PlacementConstraints,
		ProxyConfiguration:            td.ProxyConfiguration,
		RequiresCompatibilities:       td.RequiresCompatibilities,
		RuntimePlatform:               td.RuntimePlatform,
		Tags:                          keep,
		TaskRoleArn:                   td.TaskRoleArn,
		TrustedExecutionConfiguration: td.TrustedExecutionConfiguration,
		Volumes:                       td.Volumes,
	}, nil
}

// revisionKey names the revision one image makes of one task definition: services of one push
// that share a task definition family, revision and container get the same one.
type revisionKey struct {
	family    string
	revision  int32
	container string
	image     string
}

// revisionTTL is how long a registered revision is offered to other deployments: the deployments
// of one push run within it, and a later push has built another image anyway.
const revisionTTL = time.Hour

// revisions remembers the task definition revisions this server registered. One registration of a
// key runs at a time; the callers asking for it meanwhile wait for its result.
type revisions struct {
	mu sync.Mutex
	m  map[revisionKey]*revision
}

type revision struct {
	done chan struct{} // closed when arn or err is set
	arn  string
	err  error
	at   time.Time
}

func newRevisions() *revisions { return &revisions{m: map[revisionKey]*revision{}} }

// get returns the ARN registered for key, calling register when there is none yet; shared says
// another deployment registered it. A failed registration is forgotten and its error stays its
// caller's: whoever waited for it registers in its turn.
func (c *revisions) get(ctx context.Context, key revisionKey, register func() (string, error)) (arn string, shared bool, err error) {
	for {
		c.mu.Lock()
		e, ok := c.m[key]
		if ok && time.Since(e.at) < revisionTTL {
			c.mu.Unlock()
			select {
			case <-e.done:
			case <-ctx.Done():
				return "", false, context.Cause(ctx)
			}
			if e.err == nil {
				return e.arn, true, nil
			}
			continue
		}
		now := time.Now()
		for k, old := range c.m {
			if now.Sub(old.at) >= revisionTTL {
				delete(c.m, k)
			}
		}
		e = &revision{done: make(chan struct{}), at: now}
		c.m[key] = e
		c.mu.Unlock()

		e.arn, e.err = register()
		if e.err != nil {
			c.mu.Lock()
			if c.m[key] == e {
				delete(c.m, key)
			}
			c.mu.Unlock()
		}
		close(e.done)
		return e.arn, false, e.err
	}
}
