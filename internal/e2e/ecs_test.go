package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/rollout/ecs/ecstest"
	"github.com/slipway-dev/slipway/internal/testenv"
)

const ecsSecretKey = "e2e-aws-secret-key-not-to-be-logged"

// Issue 8 end to end: a signed push is built, pushed with an ECR token (moto's
// GetAuthorizationToken) to a registry standing in for ECR (aws.ecr.registry_override) that takes
// only that token's password,
// and deployed to an unowned ECS service, adopted, on the in-test ECS double: a new task
// definition naming repo@digest, the deployment succeeded. A second push the double's circuit
// breaker fails and ECS rolls back ends rolled_back, with ECS's reason in the error and the log.
// Each deployment's task definitions (new and previous) are returned by the API; a rollback goes
// back to the one recorded, and refuses an image deleted from the registry.
func TestECSDeployAndCircuitBreakerRollback(t *testing.T) {
	e := needDocker(t)
	d := newDB(t)
	motoURL := testenv.Moto(t)
	ecs := ecstest.New(t)

	// The registry standing in for ECR takes only the password of moto's ECR token, by basic auth
	// against htpasswd: a push that succeeds used the token Slipway got from the ECR API.
	user, password := ecrToken(t, motoURL)
	ecrHost := testenv.AuthRegistry(t, user, password)
	if code := testenv.BasicAuthStatus(t, ecrHost, user, password+"x"); code != http.StatusUnauthorized {
		t.Fatalf("the registry answered %d to a wrong password, want 401", code)
	}
	image := ecrHost + "/e2e-" + e.id + "/app"
	prevTD := ecs.AddTaskDef(map[string]any{
		"taskDefinitionArn": ecstest.TaskDefARN("app", 3), "family": "app", "revision": float64(3), "status": "ACTIVE",
		"networkMode": "awsvpc", "cpu": "256", "memory": "512",
		"requiresCompatibilities": []any{"FARGATE"}, "compatibilities": []any{"EC2", "FARGATE"},
		"containerDefinitions": []any{
			map[string]any{"name": "app", "image": image + ":bootstrap", "essential": true, "cpu": 0},
		},
		"registeredAt": 1.7e9, "registeredBy": "arn:aws:iam::" + ecstest.Account + ":role/admin",
	}, nil)
	ecs.AddService("app", prevTD, 2, "", true) // no owner tag: adopted; ECS rolls back on failure

	repo := newGitRepo(t)
	repo.write(".slipway.yml", fmt.Sprintf(`services:
  app:
    image: %s
    environments:
      production: {branch: main, ecs: {cluster: %s, service: app, container: app}}
`, image, ecstest.Cluster))
	repo.write("Dockerfile", e.workerDockerfile())
	repo.write("version", "1\n")
	first := repo.commit("ecs one")

	cfg := fmt.Sprintf(`repositories:
  - name: acme/app
    clone_url: %s
policy:
  rules:
    - repo: acme/app
      targets: ["ecs:%s/app"]
      images: ["%s/**"]
  adopt: ["ecs:%s/app"]
registries:
  - host: %s
    insecure: true
`, repo.dir, ecstest.Cluster, image, ecstest.Cluster, ecrHost)
	cfgPath := filepath.Join(t.TempDir(), "slipway.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, d.url,
		"SLIPWAY_CONFIG="+cfgPath,
		"SLIPWAY_DOCKER_BINARY="+e.cli,
		"SLIPWAY_DOCKER_BUILD_NETWORK=host",
		"SLIPWAY_AWS_REGION="+ecstest.Region,
		"SLIPWAY_AWS_ECS_ENDPOINT="+ecs.URL(),
		"SLIPWAY_AWS_ECR_ENDPOINT="+motoURL,
		"SLIPWAY_AWS_ECR_REGISTRY_OVERRIDE="+ecrHost,
		// Static credentials only: no profile, shared files or instance metadata.
		"AWS_ACCESS_KEY_ID="+ecstest.KeyID,
		"AWS_SECRET_ACCESS_KEY="+ecsSecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	)
	t.Cleanup(func() {
		if strings.Contains(srv.logs.String(), ecsSecretKey) {
			t.Error("slipway's output contains the AWS secret key")
		}
	})

	// First push: built, pushed with an ECR token, deployed, the service adopted.
	r1 := d.waitRun(srv.push("acme/app", "main", zeroSHA, first, "ecs one"), 5*time.Minute)
	if r1.Status != deploy.StatusPlanned || len(r1.Deployments) != 1 {
		t.Fatalf("first run: %s %q, %d deployments", r1.Status, r1.Error, len(r1.Deployments))
	}
	dep1 := r1.Deployments[0]
	checkDeployment(t, dep1, deploy.StatusSucceeded)
	if t.Failed() {
		t.Fatalf("first deployment log:\n%s", d.logs(dep1.ID))
	}
	pinned1 := image + "@" + dep1.ImageDigest
	s1 := ecs.Service("app")
	td1, tags, running := s1.TaskDef, s1.Tags, s1.Run != nil
	if td1 == prevTD || running {
		t.Fatalf("service on %s (deployment running: %v), want a new revision, steady", td1, running)
	}
	if got := containerImage(t, ecs.TaskDef(td1), "app"); got != pinned1 {
		t.Errorf("task definition %s runs %q, want %q", td1, got, pinned1)
	}
	if !hasTag(tags, "dev.slipway.repo", "acme/app") {
		t.Errorf("adopted service's tags %v lack dev.slipway.repo=acme/app", tags)
	}
	if !strings.Contains(srv.logs.String(), `msg="got an ECR token" component=registry.ecr host=`+ecrHost) {
		t.Errorf("no ECR token was fetched for %s (the override)", ecrHost)
	}
	// The API returns the task definitions the deployment recorded.
	wantResult(t, srv, dep1.ID, td1, prevTD)
	calls := ecs.Take()
	if calls["RegisterTaskDefinition"] != 1 || calls["UpdateService"] != 1 || calls["TagResource"] != 1 {
		t.Errorf("ECS calls %v: want one RegisterTaskDefinition, UpdateService and TagResource", calls)
	}
	if logs := d.logs(dep1.ID); !strings.Contains(logs, "pushed") || !strings.Contains(logs, "live: "+pinned1) {
		t.Errorf("first deployment log lacks the push or live line:\n%s", logs)
	}

	// Second push: ECS's circuit breaker fails it and ECS rolls the service back.
	const reason = "ECS deployment circuit breaker: tasks failed to start."
	ecs.Script("app", []ecstest.Step{ecstest.Progress(0, 2), ecstest.CircuitBreaker(reason), ecstest.RolledBack(reason)})
	repo.write("version", "2\n")
	second := repo.commit("ecs two")
	r2 := d.waitRun(srv.push("acme/app", "main", first, second, "ecs two"), 5*time.Minute)
	if len(r2.Deployments) != 1 {
		t.Fatalf("second run: %s %q, %d deployments", r2.Status, r2.Error, len(r2.Deployments))
	}
	dep2 := r2.Deployments[0]
	logs2 := d.logs(dep2.ID)
	if dep2.Status != deploy.StatusRolledBack || !strings.Contains(dep2.Error, reason) {
		t.Errorf("second deployment: %s %q, want rolled_back with %q\n%s", dep2.Status, dep2.Error, reason, logs2)
	}
	if dep2.ImageDigest == "" || dep2.ImageDigest == dep1.ImageDigest {
		t.Errorf("second deployment's digest %q, want a new one (first %s)", dep2.ImageDigest, dep1.ImageDigest)
	}
	if !strings.Contains(logs2, reason) {
		t.Errorf("second deployment log lacks ECS's reason:\n%s", logs2)
	}
	if s := ecs.Service("app"); s.TaskDef != td1 || s.Run != nil {
		t.Errorf("service on %s (running: %v), want ECS's rollback to %s", s.TaskDef, s.Run != nil, td1)
	}
	if calls := ecs.Take(); calls["UpdateService"] != 1 || calls["RegisterTaskDefinition"] != 1 {
		t.Errorf("ECS calls %v: want one RegisterTaskDefinition and one UpdateService (ECS rolled back, not Slipway)", calls)
	}
	td2 := ecstest.TaskDefARN("app", 5)
	if containerImage(t, ecs.TaskDef(td2), "app") != image+"@"+dep2.ImageDigest {
		t.Errorf("task definition %s does not run the second push's image", td2)
	}
	wantResult(t, srv, dep2.ID, td2, td1)
	if testing.Verbose() {
		t.Logf("rolled-back deployment's error: %s\nlog:\n%s", dep2.Error, logs2)
	}

	// Third push succeeds; then one click back to the first deployment puts its recorded task
	// definition back, registering nothing.
	ecs.Script("app", []ecstest.Step{ecstest.Progress(1, 1), ecstest.Complete()})
	repo.write("version", "3\n")
	third := repo.commit("ecs three")
	r3 := d.waitRun(srv.push("acme/app", "main", second, third, "ecs three"), 5*time.Minute)
	dep3 := r3.Deployments[0]
	checkDeployment(t, dep3, deploy.StatusSucceeded)
	td3 := ecs.Service("app").TaskDef
	wantResult(t, srv, dep3.ID, td3, td1)
	ecs.Take()

	ecs.Script("app", []ecstest.Step{ecstest.Progress(1, 1), ecstest.Complete()})
	back := rollbackTo(t, srv, d, dep1.ID)
	checkDeployment(t, back, deploy.StatusSucceeded)
	if s := ecs.Service("app"); s.TaskDef != td1 {
		t.Errorf("after the rollback the service is on %s, want the recorded %s\n%s", s.TaskDef, td1, d.logs(back.ID))
	}
	if calls := ecs.Take(); calls["RegisterTaskDefinition"] != 0 || calls["UpdateService"] != 1 {
		t.Errorf("ECS calls %v: want one UpdateService and no RegisterTaskDefinition", calls)
	}
	wantResult(t, srv, back.ID, td1, td3)

	// An image deleted from the registry (a lifecycle policy) is not rolled back to.
	deleteManifest(t, ecrHost, user, password, "e2e-"+e.id+"/app", dep1.ImageDigest)
	gone := rollbackTo(t, srv, d, dep1.ID)
	if gone.Status != deploy.StatusFailed || !strings.Contains(gone.Error, "no longer exists in its registry") {
		t.Errorf("rollback to a deleted image: %s %q, want failed saying the image is gone\n%s", gone.Status, gone.Error, d.logs(gone.ID))
	}
	if calls := ecs.Take(); calls["UpdateService"] != 0 || calls["RegisterTaskDefinition"] != 0 {
		t.Errorf("ECS calls %v: a rollback to a deleted image changed the service", calls)
	}
}

// ecrToken is the user and password of the ECR token moto gives, as Slipway gets it.
func ecrToken(t *testing.T, motoURL string) (user, password string) {
	t.Helper()
	client := ecr.New(ecr.Options{Region: ecstest.Region, BaseEndpoint: aws.String(motoURL),
		Credentials: credentials.NewStaticCredentialsProvider(ecstest.KeyID, ecsSecretKey, "")})
	out, err := client.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil || len(out.AuthorizationData) == 0 {
		t.Fatalf("GetAuthorizationToken: %v", err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	user, password, ok := strings.Cut(string(raw), ":")
	if err != nil || !ok {
		t.Fatalf("moto's token does not decode to user:password: %v", err)
	}
	return user, password
}

// wantResult checks the task definitions the API returns for a deployment.
func wantResult(t *testing.T, srv *server, id int64, arn, previous string) {
	t.Helper()
	var got struct {
		Result struct {
			ARN      string `json:"task_definition_arn"`
			Previous string `json:"previous_task_definition_arn"`
		} `json:"result"`
	}
	if code := srv.api(http.MethodGet, fmt.Sprintf("/deployments/%d", id), apiToken, &got); code != http.StatusOK {
		t.Fatalf("GET deployment %d: %d", id, code)
	}
	if got.Result.ARN != arn || got.Result.Previous != previous {
		t.Errorf("deployment %d: the API returns task definition %q (previous %q), want %q (previous %q)",
			id, got.Result.ARN, got.Result.Previous, arn, previous)
	}
}

// rollbackTo asks the API to roll back to deployment id and returns the rollback's deployment
// once it is final.
func rollbackTo(t *testing.T, srv *server, d *db, id int64) deploy.Deployment {
	t.Helper()
	var rb struct {
		RunID int64 `json:"run_id"`
	}
	if code := srv.api(http.MethodPost, fmt.Sprintf("/deployments/%d/rollback", id), apiToken, &rb); code != http.StatusAccepted {
		t.Fatalf("rollback to %d: %d", id, code)
	}
	r := d.waitRun(rb.RunID, 3*time.Minute)
	if len(r.Deployments) != 1 {
		t.Fatalf("rollback run %d has %d deployments", rb.RunID, len(r.Deployments))
	}
	return r.Deployments[0]
}

// deleteManifest deletes a manifest from the registry, as an ECR lifecycle policy expires an image.
func deleteManifest(t *testing.T, host, user, password, repository, digest string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, "http://"+host+"/v2/"+repository+"/manifests/"+digest, nil)
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deleting %s@%s: %s", repository, digest, resp.Status)
	}
}

// containerImage is the image of the named container of a task definition.
func containerImage(t *testing.T, td map[string]any, name string) string {
	t.Helper()
	if td == nil {
		t.Fatal("no such task definition")
	}
	defs, _ := td["containerDefinitions"].([]any)
	for _, c := range defs {
		if m, _ := c.(map[string]any); m["name"] == name {
			s, _ := m["image"].(string)
			return s
		}
	}
	t.Fatalf("task definition has no container %q: %v", name, td)
	return ""
}

func hasTag(tags []any, key, value string) bool {
	for _, tg := range tags {
		if m, _ := tg.(map[string]any); m["key"] == key && m["value"] == value {
			return true
		}
	}
	return false
}
