package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/rollout/ecs"
)

// pushActions are what docker push and the digest read need of an ECR repository: the registry
// API calls ECR authorises, which no SDK interface of ours names.
var pushActions = []string{
	"ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
	"ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
}

type statement struct {
	Sid       string
	Effect    string
	Action    []string
	Resource  any // "*" or a list
	Condition map[string]map[string]string
}

func readPolicy(t *testing.T) []statement {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "iam-policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Version   string
		Statement []statement
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("deploy/iam-policy.json: %v", err)
	}
	if p.Version != "2012-10-17" {
		t.Errorf("policy Version %q, want 2012-10-17", p.Version)
	}
	return p.Statement
}

// methods are the methods of interface type T, as IAM actions of service.
func methods[T any](service string) []string {
	typ := reflect.TypeFor[T]()
	var out []string
	for i := range typ.NumMethod() {
		out = append(out, service+":"+typ.Method(i).Name)
	}
	return out
}

// The IAM policy in deploy/ grants every ECS and ECR action the code calls (read from the API
// interfaces the target and the ECR credentials declare), what docker push needs, PassRole only to
// ECS tasks and AssumeRole; and nothing else.
func TestIAMPolicy(t *testing.T) {
	statements := readPolicy(t)
	granted := map[string][]statement{}
	for _, s := range statements {
		if s.Effect != "Allow" || s.Sid == "" || len(s.Action) == 0 {
			t.Errorf("statement %+v: want a Sid, Allow and actions", s)
		}
		for _, a := range s.Action {
			granted[a] = append(granted[a], s)
		}
	}

	called := slices.Concat(methods[ecs.API]("ecs"), methods[registry.ECRTokens]("ecr"), methods[registry.ECRRepositories]("ecr"))
	if len(called) < 12 {
		t.Fatalf("only %d API methods found in the interfaces: %v", len(called), called)
	}
	needed := slices.Concat(called, pushActions, []string{"iam:PassRole", "sts:AssumeRole"})
	for _, a := range needed {
		if len(granted[a]) == 0 {
			t.Errorf("the policy does not grant %s, which Slipway calls", a)
		}
	}
	for a := range granted {
		if !slices.Contains(needed, a) {
			t.Errorf("the policy grants %s, which Slipway never calls", a)
		}
	}

	// Least privilege: "*" only where the action has no resource to name, or a condition narrows it.
	star := []string{"ecr:GetAuthorizationToken", "ecs:DescribeTaskDefinition", "ecs:RegisterTaskDefinition", "ecs:ListTasks"}
	for _, s := range statements {
		if s.Resource == "*" {
			for _, a := range s.Action {
				if !slices.Contains(star, a) {
					t.Errorf("statement %s grants %s on every resource", s.Sid, a)
				}
			}
			continue
		}
		for _, r := range s.Resource.([]any) {
			if r, _ := r.(string); !strings.Contains(r, "ACCOUNT_ID") || strings.HasSuffix(r, ":*") && !strings.Contains(r, "task-definition/") {
				t.Errorf("statement %s: resource %q is not a named one of the account (ACCOUNT_ID placeholder)", s.Sid, r)
			}
		}
	}
	for _, s := range granted["iam:PassRole"] {
		if s.Condition["StringEquals"]["iam:PassedToService"] != "ecs-tasks.amazonaws.com" {
			t.Errorf("statement %s passes roles without iam:PassedToService ecs-tasks.amazonaws.com", s.Sid)
		}
	}
	for _, s := range granted["ecs:ListTasks"] {
		if s.Condition["ArnEquals"]["ecs:cluster"] == "" {
			t.Errorf("statement %s lists the tasks of every cluster", s.Sid)
		}
	}
}
