// Package ecs deploys to existing AWS ECS services: it registers a revision of a service's live task
// definition with only one container's image changed, updates the service to it, and follows that
// deployment to ECS's own verdict. Slipway updates services; it does not own their definition, so it
// never creates one, and it reports what ECS did: a deployment ECS's circuit breaker rolled back ends
// rolled back with ECS's reason, never succeeded.
//
// Services deployed by ECS itself (the ECS deployment controller: rolling updates, and the
// blue/green, linear and canary strategies with their lifecycle hooks and bake time) are followed to
// the end ECS gives them; services deployed by CodeDeploy or an external controller are refused.
package ecs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
)

// Config configures a Target; zero values take the defaults named on each field. How long a deploy
// may take is the caller's: the context's deadline bounds it.
type Config struct {
	// PollMin is the first gap between two reads of the service while a deployment runs; it doubles
	// up to PollMax. 1s and 15s by default.
	PollMin, PollMax time.Duration
	// RestoreTimeout bounds the rollback Slipway starts itself, when the deploy's context ended or
	// ECS gave up without rolling back, and the wait for it: 10m by default.
	RestoreTimeout time.Duration
	// Images is the registry a rollback asks whether its image still exists (an ECR lifecycle
	// policy may have deleted it) before the service is pointed back at it; nil skips the check.
	Images Images
}

// Images reads manifest digests; *registry.Registry satisfies it. ok is false when the registry
// does not hold ref (repository@sha256:…).
type Images interface {
	Digest(ctx context.Context, ref string) (digest string, ok bool, err error)
}

// API is the part of the ECS API the target calls; *ecs.Client satisfies it. Retries and throttling
// are the client's (the SDK's standard retryer), never the target's.
type API interface {
	DescribeServices(ctx context.Context, in *awsecs.DescribeServicesInput, opts ...func(*awsecs.Options)) (*awsecs.DescribeServicesOutput, error)
	DescribeTaskDefinition(ctx context.Context, in *awsecs.DescribeTaskDefinitionInput, opts ...func(*awsecs.Options)) (*awsecs.DescribeTaskDefinitionOutput, error)
	RegisterTaskDefinition(ctx context.Context, in *awsecs.RegisterTaskDefinitionInput, opts ...func(*awsecs.Options)) (*awsecs.RegisterTaskDefinitionOutput, error)
	UpdateService(ctx context.Context, in *awsecs.UpdateServiceInput, opts ...func(*awsecs.Options)) (*awsecs.UpdateServiceOutput, error)
	ListServiceDeployments(ctx context.Context, in *awsecs.ListServiceDeploymentsInput, opts ...func(*awsecs.Options)) (*awsecs.ListServiceDeploymentsOutput, error)
	DescribeServiceDeployments(ctx context.Context, in *awsecs.DescribeServiceDeploymentsInput, opts ...func(*awsecs.Options)) (*awsecs.DescribeServiceDeploymentsOutput, error)
	ListTasks(ctx context.Context, in *awsecs.ListTasksInput, opts ...func(*awsecs.Options)) (*awsecs.ListTasksOutput, error)
	DescribeTasks(ctx context.Context, in *awsecs.DescribeTasksInput, opts ...func(*awsecs.Options)) (*awsecs.DescribeTasksOutput, error)
	ListTagsForResource(ctx context.Context, in *awsecs.ListTagsForResourceInput, opts ...func(*awsecs.Options)) (*awsecs.ListTagsForResourceOutput, error)
	TagResource(ctx context.Context, in *awsecs.TagResourceInput, opts ...func(*awsecs.Options)) (*awsecs.TagResourceOutput, error)
}

var _ API = (*awsecs.Client)(nil)

// Target deploys to the ECS services of one account and region, the ones its API client reaches.
// It is safe for concurrent use: deployments of several services of one push run at once and
// share the task definition revisions they would otherwise register twice.
type Target struct {
	cfg       Config
	api       API
	logger    *slog.Logger
	revisions *revisions
}

var _ deploy.Target = (*Target)(nil)

// New returns a Target calling ECS through api.
func New(cfg Config, api API, logger *slog.Logger) (*Target, error) {
	switch {
	case api == nil:
		return nil, errors.New("ecs target: an ECS API client is required")
	case logger == nil:
		return nil, errors.New("ecs target: a logger is required")
	}
	cfg.PollMin = cmp.Or(cfg.PollMin, time.Second)
	cfg.PollMax = cmp.Or(cfg.PollMax, 15*time.Second)
	cfg.RestoreTimeout = cmp.Or(cfg.RestoreTimeout, 10*time.Minute)
	if err := dockercli.CheckDurations("ecs target", map[string]time.Duration{
		"PollMin": cfg.PollMin, "PollMax": cfg.PollMax, "RestoreTimeout": cfg.RestoreTimeout,
	}); err != nil {
		return nil, err
	}
	if cfg.PollMax < cfg.PollMin {
		return nil, fmt.Errorf("ecs target: PollMax (%s) is shorter than PollMin (%s)", cfg.PollMax, cfg.PollMin)
	}
	return &Target{cfg: cfg, api: api, logger: logger, revisions: newRevisions()}, nil
}

// Deploy registers a revision of the service's live task definition running r.Image in the
// destination's container, updates the service to it and follows that deployment to its end. When
// ECS rolled it back (its circuit breaker), or Slipway did after the context ended or ECS gave up,
// the error wraps deploy.ErrRolledBack and says why.
func (t *Target) Deploy(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	restored, err := t.roll(ctx, r, log)
	return deploy.RolloutError(false, r.Image, restored, err)
}

// Rollback makes r.Image live again, once its registry says it still holds it: the service is
// updated to the task definition recorded for the deployment rolled back to (the destination's
// TaskDefinition) when it is still active and runs that image, else to a revision of the live task
// definition with that image, as Deploy does. Its failure is a plain error even when what ran
// before runs again.
func (t *Target) Rollback(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	restored, err := t.rollBack(ctx, r, log)
	return deploy.RolloutError(true, r.Image, restored, err)
}

func (t *Target) rollBack(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (restored bool, err error) {
	if _, err := checkRollout(r, r.Image); err != nil {
		return false, err
	}
	if err := t.checkImage(ctx, r.Image); err != nil {
		return false, err
	}
	u, err := t.prepare(ctx, r, log)
	if err != nil {
		return false, err
	}
	if arn := r.Destination.ECS.TaskDefinition; arn != "" {
		if why := u.reusable(ctx, arn); why != "" {
			say(log, "task definition %s recorded for that deployment %s: registering a revision of %s with %s instead",
				short(arn), why, short(aws.ToString(u.td.TaskDefinitionArn)), deploy.ShortImage(r.Image))
		} else {
			u.reuse = arn
		}
	}
	return u.run(ctx)
}

// checkImage fails when the registry no longer holds ref, or cannot say.
func (t *Target) checkImage(ctx context.Context, ref string) error {
	if t.cfg.Images == nil {
		return nil
	}
	_, ok, err := t.cfg.Images.Digest(ctx, ref)
	switch {
	case err != nil:
		return fmt.Errorf("checking that %s still exists in its registry: %w", deploy.ShortImage(ref), err)
	case !ok:
		return fmt.Errorf("image %s no longer exists in its registry (deleted, by an ECR lifecycle policy for one): "+
			"it cannot run again, so the service is left as it is", ref)
	}
	return nil
}

func (t *Target) roll(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (restored bool, err error) {
	u, err := t.prepare(ctx, r, log)
	if err != nil {
		return false, err
	}
	return u.run(ctx)
}

// place is the service a rollout names.
type place struct{ cluster, service, container string }

func (p place) String() string { return p.cluster + "/" + p.service }

func checkRollout(r deploy.Rollout, image string) (place, error) {
	e := r.Destination.ECS
	if e == nil {
		return place{}, fmt.Errorf("target %q is not an ECS target", r.Destination.Ref())
	}
	p := place{cluster: cmp.Or(e.Cluster, "default"), service: e.Service, container: e.Container}
	switch {
	case p.service == "":
		return p, errors.New("the ECS destination names no service")
	case p.container == "":
		return p, fmt.Errorf("the ECS destination %s names no container", p)
	}
	if err := dockercli.CheckPinned(image); err != nil {
		return p, err
	}
	return p, nil
}

// stream is the LogFunc stream of every line the target writes: the deploy stage's.
const stream = "deploy"

func say(log deploy.LogFunc, format string, args ...any) {
	log(stream, fmt.Sprintf(format, args...))
}
