package ecs

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// describe reads the service, which must exist and be active.
func (t *Target) describe(ctx context.Context, p place) (ecstypes.Service, error) {
	out, err := t.api.DescribeServices(ctx, &awsecs.DescribeServicesInput{
		Cluster: aws.String(p.cluster), Services: []string{p.service},
	})
	if err != nil {
		return ecstypes.Service{}, fmt.Errorf("describing ECS service %s: %w", p, err)
	}
	for _, s := range out.Services {
		if aws.ToString(s.ServiceName) != p.service {
			continue
		}
		if st := aws.ToString(s.Status); st != "ACTIVE" {
			return s, fmt.Errorf("ECS service %s is %s, not ACTIVE", p, st)
		}
		return s, nil
	}
	if len(out.Failures) > 0 && aws.ToString(out.Failures[0].Reason) != "MISSING" {
		f := out.Failures[0]
		return ecstypes.Service{}, fmt.Errorf("describing ECS service %s: %s %s", p, aws.ToString(f.Reason), aws.ToString(f.Detail))
	}
	return ecstypes.Service{}, fmt.Errorf("ECS service %s does not exist: create it first", p)
}

// owner returns the service's LabelRepo tag, "" when it has none.
func (t *Target) owner(ctx context.Context, p place, s ecstypes.Service) (string, error) {
	out, err := t.api.ListTagsForResource(ctx, &awsecs.ListTagsForResourceInput{ResourceArn: s.ServiceArn})
	if err != nil {
		return "", fmt.Errorf("reading the tags of ECS service %s: %w", p, err)
	}
	for _, tag := range out.Tags {
		if aws.ToString(tag.Key) == deploy.LabelRepo {
			return aws.ToString(tag.Value), nil
		}
	}
	return "", nil
}

// adopt tags the service as repo's, as every service Slipway deploys is.
func (t *Target) adopt(ctx context.Context, p place, s ecstypes.Service, repo string) error {
	_, err := t.api.TagResource(ctx, &awsecs.TagResourceInput{
		ResourceArn: s.ServiceArn,
		Tags:        []ecstypes.Tag{{Key: aws.String(deploy.LabelRepo), Value: aws.String(strings.ToLower(repo))}},
	})
	if err != nil {
		return fmt.Errorf("tagging ECS service %s: %w", p, err)
	}
	return nil
}

// taskDefinition reads a task definition with its tags.
func (t *Target) taskDefinition(ctx context.Context, arn string) (*ecstypes.TaskDefinition, []ecstypes.Tag, error) {
	out, err := t.api.DescribeTaskDefinition(ctx, &awsecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(arn), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("describing task definition %s: %w", short(arn), err)
	}
	if out.TaskDefinition == nil {
		return nil, nil, fmt.Errorf("describing task definition %s: ECS returned none", short(arn))
	}
	return out.TaskDefinition, out.Tags, nil
}

// checkController refuses a service whose deployments ECS does not run itself: CodeDeploy's and
// external controllers' services take no task definition in UpdateService.
func checkController(p place, s ecstypes.Service) error {
	if c := s.DeploymentController; c != nil && c.Type != "" && c.Type != ecstypes.DeploymentControllerTypeEcs {
		return fmt.Errorf("ECS service %s is deployed by %s: Slipway deploys only services whose deployment controller is ECS", p, c.Type)
	}
	return nil
}

// short names a task definition as family:revision, the way the console does.
func short(arn string) string {
	if _, after, ok := strings.Cut(arn, ":task-definition/"); ok {
		return after
	}
	return arn
}

// image is the image of the named container of td, "" when it has none.
func image(td *ecstypes.TaskDefinition, container string) string {
	for _, c := range td.ContainerDefinitions {
		if aws.ToString(c.Name) == container {
			return aws.ToString(c.Image)
		}
	}
	return ""
}

// deployment returns the service's deployment with that ID, nil when it has none.
func deployment(s ecstypes.Service, id string) *ecstypes.Deployment {
	for i := range s.Deployments {
		if aws.ToString(s.Deployments[i].Id) == id {
			return &s.Deployments[i]
		}
	}
	return nil
}

// newest returns the newest of the service's deployments of task definition arn, nil when none
// runs it.
func newest(s ecstypes.Service, arn string) *ecstypes.Deployment {
	var d *ecstypes.Deployment
	for i := range s.Deployments {
		c := &s.Deployments[i]
		if aws.ToString(c.TaskDefinition) == arn && (d == nil || aws.ToTime(c.CreatedAt).After(aws.ToTime(d.CreatedAt))) {
			d = c
		}
	}
	return d
}

// primary returns the service's PRIMARY deployment, nil when it has none.
func primary(s ecstypes.Service) *ecstypes.Deployment {
	for i := range s.Deployments {
		if aws.ToString(s.Deployments[i].Status) == "PRIMARY" {
			return &s.Deployments[i]
		}
	}
	return nil
}

// rollsBack says whether ECS's circuit breaker rolls the service back when a deployment fails.
func rollsBack(s ecstypes.Service) bool {
	c := s.DeploymentConfiguration
	return c != nil && c.DeploymentCircuitBreaker != nil && c.DeploymentCircuitBreaker.Enable && c.DeploymentCircuitBreaker.Rollback
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
