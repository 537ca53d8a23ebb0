package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// A deployment's result is written only under its claim, and read back with the deployment.
func TestDeploymentResultFenced(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	runID, err := st.RunCreate(ctx, deploy.Run{Trigger: "push", Repo: "acme/app", Ref: "refs/heads/main",
		Branch: "main", AfterSHA: sha})
	if err != nil {
		t.Fatal(err)
	}
	spec := deploy.Spec{Destination: deploy.Destination{Service: "api", Environment: "prod", Platform: deploy.PlatformECS,
		ECS: &deploy.ECSService{Cluster: "prod", Service: "api", Container: "api"}}}
	if _, err := st.DeploymentsEnqueue(ctx, []deploy.NewDeployment{{RunID: runID, Repo: "acme/app", Service: "api",
		Environment: "prod", Platform: deploy.PlatformECS, Spec: spec, CommitSHA: sha}}); err != nil {
		t.Fatal(err)
	}
	c, ok, err := st.QueueClaim(ctx, store.KindDeployment, "worker-1", time.Minute)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	res := deploy.Result{TaskDefinitionARN: "arn:aws:ecs:us-east-1:123456789012:task-definition/api:6",
		PreviousTaskDefinitionARN: "arn:aws:ecs:us-east-1:123456789012:task-definition/api:5"}

	stale := c.Claim
	stale.Attempt--
	if err := st.DeploymentResult(ctx, stale, res); !errors.Is(err, store.ErrNotHeld) {
		t.Errorf("result under an earlier attempt: %v, want ErrNotHeld", err)
	}
	other := c.Claim
	other.Owner = "worker-2"
	if err := st.DeploymentResult(ctx, other, res); !errors.Is(err, store.ErrNotHeld) {
		t.Errorf("result under another owner: %v, want ErrNotHeld", err)
	}
	if d, err := st.DeploymentGet(ctx, c.ID); err != nil || d.Result != (deploy.Result{}) {
		t.Fatalf("after refused writes: %+v %v, want no result", d.Result, err)
	}
	if err := st.DeploymentResult(ctx, c.Claim, res); err != nil {
		t.Fatal(err)
	}
	if d, err := st.DeploymentGet(ctx, c.ID); err != nil || d.Result != res {
		t.Errorf("result %+v %v, want %+v", d.Result, err, res)
	}
}
