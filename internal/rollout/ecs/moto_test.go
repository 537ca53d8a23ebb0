package ecs_test

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/slipway-dev/slipway/internal/rollout/ecs"
	"github.com/slipway-dev/slipway/internal/rollout/ecs/ecstest"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// TestMoto checks every call the target makes against moto, a third-party AWS emulator: real
// request and response shapes. moto does not model rollouts (its one deployment record keeps the
// first task definition and a rollout state that never changes; with MOTO_ECS_SERVICE_RUNNING set
// to the desired count it is COMPLETED from the start), so the target follows the service itself
// until it names the new revision and is steady; the outcomes moto cannot show are the double's.
func TestMoto(t *testing.T) {
	url := testenv.Moto(t, "MOTO_ECS_SERVICE_RUNNING=1")
	client := ecstest.NewClient(url)

	t.Run("deploy", func(t *testing.T) {
		testenv.ResetMoto(t, url)
		td := motoService(t, client, "api", &awsecs.RegisterTaskDefinitionInput{
			Family: aws.String("api"), NetworkMode: ecstypes.NetworkModeBridge,
			ContainerDefinitions: []ecstypes.ContainerDefinition{
				{Name: aws.String("api"), Image: aws.String(img("v1")), Memory: aws.Int32(128), Essential: aws.Bool(true)},
				{Name: aws.String("sidecar"), Image: aws.String("busybox:1.36"), Memory: aws.Int32(32), Essential: aws.Bool(false)},
			},
			Tags: []ecstypes.Tag{{Key: aws.String("team"), Value: aws.String("core")}},
		})
		tgt, log := motoTarget(t, client)
		image := img("v2")
		r := (&fixture{prev: img("v1")}).rollout("api", image)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard, not a measure
		defer cancel()
		if err := tgt.Deploy(ctx, r, log.log); err != nil {
			t.Fatalf("Deploy: %v\n%s", err, log)
		}
		next := motoLive(t, client, "api")
		if got := image1(next, "api"); got != image {
			t.Errorf("the service's task definition runs %s, want %s", got, image)
		}
		sameDefinition(t, client, td, next)
		wantLog(t, log, "registered task definition api:2", "ECS service prod/api runs api:2")

		// Restore to the image it ran: a new revision with v1, and nothing when it runs it.
		if err := tgt.Restore(ctx, r, log.log); err != nil {
			t.Fatalf("Restore: %v\n%s", err, log)
		}
		if got := image1(motoLive(t, client, "api"), "api"); got != img("v1") {
			t.Errorf("after Restore the service runs %s, want %s", got, img("v1"))
		}
		if err := tgt.Restore(ctx, r, log.log); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		wantLog(t, log, "nothing to restore")
	})

	t.Run("rich task definition", func(t *testing.T) {
		testenv.ResetMoto(t, url)
		raw, tags := richTaskDef(t)
		in := richInput(t, raw, tags)
		td := motoService(t, client, "rich", in)
		tgt, log := motoTarget(t, client)
		image := img("rich-v2")
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		if err := tgt.Deploy(ctx, (&fixture{}).rollout("rich", image), log.log); err != nil {
			t.Fatalf("Deploy: %v\n%s", err, log)
		}
		next := motoLive(t, client, "rich")
		if got := image1(next, "api"); got != image {
			t.Errorf("the service's task definition runs %s, want %s", got, image)
		}
		sameDefinition(t, client, td, next)
	})
}

func motoTarget(t *testing.T, client *awsecs.Client) (*ecs.Target, *logLines) {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	tgt, err := ecs.New(ecs.Config{PollMin: 5 * time.Millisecond, PollMax: 20 * time.Millisecond}, client, logger)
	if err != nil {
		t.Fatal(err)
	}
	log := &logLines{}
	t.Cleanup(func() {
		if testing.Verbose() {
			t.Logf("deploy log:\n%s", log)
		}
	})
	return tgt, log
}

// motoService creates cluster prod and service name on a task definition registered from in, as an
// operator would, owned by acme/api; it returns that task definition.
func motoService(t *testing.T, client *awsecs.Client, name string, in *awsecs.RegisterTaskDefinitionInput) *ecstypes.TaskDefinition {
	t.Helper()
	ctx := t.Context()
	if _, err := client.CreateCluster(ctx, &awsecs.CreateClusterInput{ClusterName: aws.String(ecstest.Cluster)}); err != nil {
		t.Fatal(err)
	}
	reg, err := client.RegisterTaskDefinition(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.CreateService(ctx, &awsecs.CreateServiceInput{
		Cluster: aws.String(ecstest.Cluster), ServiceName: aws.String(name), TaskDefinition: reg.TaskDefinition.TaskDefinitionArn,
		DesiredCount: aws.Int32(1),
		DeploymentConfiguration: &ecstypes.DeploymentConfiguration{
			DeploymentCircuitBreaker: &ecstypes.DeploymentCircuitBreaker{Enable: true, Rollback: true},
		},
		Tags: []ecstypes.Tag{{Key: aws.String("dev.slipway.repo"), Value: aws.String("acme/api")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return reg.TaskDefinition
}

// motoLive is the task definition the service names now.
func motoLive(t *testing.T, client *awsecs.Client, name string) *ecstypes.TaskDefinition {
	t.Helper()
	out, err := client.DescribeServices(t.Context(), &awsecs.DescribeServicesInput{Cluster: aws.String(ecstest.Cluster), Services: []string{name}})
	if err != nil || len(out.Services) != 1 {
		t.Fatalf("describing %s: %v", name, err)
	}
	td, err := client.DescribeTaskDefinition(t.Context(), &awsecs.DescribeTaskDefinitionInput{TaskDefinition: out.Services[0].TaskDefinition})
	if err != nil {
		t.Fatal(err)
	}
	return td.TaskDefinition
}

// sameDefinition checks that next is before with another image in container api: moto's own
// reading of both, every field compared, the read-only ones aside, and the same tags.
func sameDefinition(t *testing.T, client *awsecs.Client, before, next *ecstypes.TaskDefinition) {
	t.Helper()
	if aws.ToString(next.TaskDefinitionArn) == aws.ToString(before.TaskDefinitionArn) {
		t.Fatalf("no new revision: %s", aws.ToString(next.TaskDefinitionArn))
	}
	a, b := *before, *next
	for _, td := range []*ecstypes.TaskDefinition{&a, &b} {
		td.TaskDefinitionArn, td.Revision, td.RegisteredAt, td.RegisteredBy, td.Status = nil, 0, nil, nil, ""
		td.RequiresAttributes, td.Compatibilities = nil, nil
		td.ContainerDefinitions = append([]ecstypes.ContainerDefinition(nil), td.ContainerDefinitions...)
		for i := range td.ContainerDefinitions {
			if aws.ToString(td.ContainerDefinitions[i].Name) == "api" {
				td.ContainerDefinitions[i].Image = nil
			}
		}
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("the new revision differs from the old beyond the image:\n%s", jsonDiff(t, a, b))
	}
	tags := func(td *ecstypes.TaskDefinition) []ecstypes.Tag {
		out, err := client.DescribeTaskDefinition(t.Context(), &awsecs.DescribeTaskDefinitionInput{
			TaskDefinition: td.TaskDefinitionArn, Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
		})
		if err != nil {
			t.Fatal(err)
		}
		var keep []ecstypes.Tag
		for _, tag := range out.Tags {
			if k := aws.ToString(tag.Key); len(k) < 4 || k[:4] != "aws:" {
				keep = append(keep, tag)
			}
		}
		return keep
	}
	if want, got := tags(before), tags(next); !reflect.DeepEqual(want, got) {
		t.Errorf("tags of the new revision %v, want %v", got, want)
	}
}

func image1(td *ecstypes.TaskDefinition, container string) string {
	for _, c := range td.ContainerDefinitions {
		if aws.ToString(c.Name) == container {
			return aws.ToString(c.Image)
		}
	}
	return ""
}

// richInput turns the rich task definition, as ECS describes it, into the registration that
// creates it in moto. It goes through the SDK's own types, as JSON in ECS's field names.
func richInput(t *testing.T, td map[string]any, tags []any) *awsecs.RegisterTaskDefinitionInput {
	t.Helper()
	// The double registers exactly what it is sent: let it translate the JSON for us through the
	// real client, then read the typed task definition back.
	d := ecstest.New(t)
	d.AddTaskDef(td, tags)
	out, err := d.Client().DescribeTaskDefinition(t.Context(), &awsecs.DescribeTaskDefinitionInput{
		TaskDefinition: aws.String(td["taskDefinitionArn"].(string)), Include: []ecstypes.TaskDefinitionField{ecstypes.TaskDefinitionFieldTags},
	})
	if err != nil {
		t.Fatal(err)
	}
	x := out.TaskDefinition
	return &awsecs.RegisterTaskDefinitionInput{
		Family: x.Family, ContainerDefinitions: x.ContainerDefinitions, Cpu: x.Cpu, Memory: x.Memory,
		EnableFaultInjection: x.EnableFaultInjection, EphemeralStorage: x.EphemeralStorage, ExecutionRoleArn: x.ExecutionRoleArn,
		IpcMode: x.IpcMode, NetworkMode: x.NetworkMode, PidMode: x.PidMode, PlacementConstraints: x.PlacementConstraints,
		ProxyConfiguration: x.ProxyConfiguration, RequiresCompatibilities: x.RequiresCompatibilities,
		RuntimePlatform: x.RuntimePlatform, TaskRoleArn: x.TaskRoleArn, Volumes: x.Volumes, Tags: out.Tags,
	}
}
