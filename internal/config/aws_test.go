package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestAWSKeys(t *testing.T) {
	file := writeFile(t, `
aws:
  region: eu-west-1
  role_arn: arn:aws:iam::123456789012:role/slipway
  external_id: from-the-file
  endpoints:
    ecs: http://127.0.0.1:5000
    sts: https://sts.eu-west-1.amazonaws.com
  ecr:
    registry_override: 127.0.0.1:5001
    create_repositories: true
    scan_on_push: true
`)
	cfg, err := Load(file, []string{base, "SLIPWAY_AWS_EXTERNAL_ID=from-the-env", "SLIPWAY_AWS_ECR_ENDPOINT=https://vpce-1.api.ecr.eu-west-1.vpce.amazonaws.com",
		"SLIPWAY_AWS_ECR_TAG_IMMUTABILITY=true"})
	if err != nil {
		t.Fatal(err)
	}
	want := AWS{Region: "eu-west-1", RoleARN: "arn:aws:iam::123456789012:role/slipway", ExternalID: "from-the-env",
		Endpoints: AWSEndpoints{ECS: "http://127.0.0.1:5000", ECR: "https://vpce-1.api.ecr.eu-west-1.vpce.amazonaws.com", STS: "https://sts.eu-west-1.amazonaws.com"},
		ECR:       ECR{RegistryOverride: "127.0.0.1:5001", CreateRepositories: true, TagImmutability: true, ScanOnPush: true}}
	if cfg.AWS != want {
		t.Errorf("aws = %+v\nwant %+v", cfg.AWS, want)
	}
	if !cfg.AWS.Enabled() {
		t.Error("AWS with a region is not enabled")
	}

	// Every key from the environment alone.
	cfg, err = Load("", []string{base, "SLIPWAY_AWS_REGION=us-gov-west-1", "SLIPWAY_AWS_ROLE_ARN=arn:aws-us-gov:iam::123456789012:role/path/x",
		"SLIPWAY_AWS_EXTERNAL_ID=ext-id", "SLIPWAY_AWS_ECS_ENDPOINT=http://localhost:1", "SLIPWAY_AWS_ECR_ENDPOINT=http://localhost:2",
		"SLIPWAY_AWS_STS_ENDPOINT=http://localhost:3", "SLIPWAY_AWS_ECR_REGISTRY_OVERRIDE=localhost:5000",
		"SLIPWAY_AWS_ECR_CREATE_REPOSITORIES=1", "SLIPWAY_AWS_ECR_TAG_IMMUTABILITY=true", "SLIPWAY_AWS_ECR_SCAN_ON_PUSH=true"})
	if err != nil {
		t.Fatal(err)
	}
	want = AWS{Region: "us-gov-west-1", RoleARN: "arn:aws-us-gov:iam::123456789012:role/path/x", ExternalID: "ext-id",
		Endpoints: AWSEndpoints{ECS: "http://localhost:1", ECR: "http://localhost:2", STS: "http://localhost:3"},
		ECR:       ECR{RegistryOverride: "localhost:5000", CreateRepositories: true, TagImmutability: true, ScanOnPush: true}}
	if cfg.AWS != want {
		t.Errorf("aws from the environment = %+v\nwant %+v", cfg.AWS, want)
	}

	cfg, err = Load("", []string{base})
	if err != nil || cfg.AWS.Enabled() || cfg.AWS != (AWS{}) {
		t.Errorf("default aws = %+v, %v; want none, off", cfg.AWS, err)
	}
}

func TestAWSErrorsNameTheKey(t *testing.T) {
	const canary = "CANARY-external-id"
	cases := []struct {
		name, file string
		env        []string
		want       string
	}{
		{"no region with a role", "", []string{"SLIPWAY_AWS_ROLE_ARN=arn:aws:iam::123456789012:role/x"}, "aws.region (SLIPWAY_AWS_REGION): required"},
		{"no region with an endpoint", "aws:\n  endpoints:\n    ecs: http://127.0.0.1:1\n", nil, "aws.region"},
		{"no region with ecr settings", "aws:\n  ecr:\n    create_repositories: true\n", nil, "aws.region"},
		{"bad region", "", []string{"SLIPWAY_AWS_REGION=Ireland"}, "aws.region (SLIPWAY_AWS_REGION)"},
		{"bad role", "", []string{"SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_ROLE_ARN=arn:aws:iam::123:user/x"}, "aws.role_arn"},
		{"external id without a role", "", []string{"SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_EXTERNAL_ID=" + canary}, "aws.external_id"},
		{"bad external id", "", []string{"SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_ROLE_ARN=arn:aws:iam::123456789012:role/x",
			"SLIPWAY_AWS_EXTERNAL_ID=" + canary + " with spaces"}, "aws.external_id"},
		{"endpoint not a URL", "", []string{"SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_ECS_ENDPOINT=127.0.0.1:4566"}, "aws.endpoints.ecs (SLIPWAY_AWS_ECS_ENDPOINT)"},
		{"endpoint with credentials", "", []string{"SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_STS_ENDPOINT=https://u:" + canary + "@sts.example"}, "aws.endpoints.sts"},
		{"endpoint scheme", "aws:\n  region: eu-west-1\n  endpoints:\n    ecr: ftp://ecr.example\n", nil, "aws.endpoints.ecr"},
		{"bad registry override", "", []string{"SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_ECR_REGISTRY_OVERRIDE=http://127.0.0.1:5000"}, "aws.ecr.registry_override"},
		{"immutability without creation", "aws:\n  region: eu-west-1\n  ecr:\n    tag_immutability: true\n", nil, "aws.ecr.tag_immutability"},
		{"scan without creation", "", []string{"SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_ECR_SCAN_ON_PUSH=true"}, "aws.ecr.scan_on_push"},
		{"bad boolean", "", []string{"SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_ECR_CREATE_REPOSITORIES=sometimes"}, "SLIPWAY_AWS_ECR_CREATE_REPOSITORIES"},
		{"unknown key", "aws:\n  region: eu-west-1\n  profile: prod\n", nil, "aws.profile: unknown key"},
		{"unknown ecr key", "aws:\n  region: eu-west-1\n  ecr:\n    lifecycle: keep\n", nil, "aws.ecr.lifecycle: unknown key"},
		{"external id of the wrong type", "aws:\n  region: eu-west-1\n  external_id: [" + canary + "]\n", nil, "aws.external_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantLoadError(t, c.file, c.env, c.want, canary) })
	}
}

func TestAWSExternalIDNeverPrinted(t *testing.T) {
	const canary = "CANARY-external-id"
	cfg, err := Load("", []string{base, "SLIPWAY_AWS_REGION=eu-west-1", "SLIPWAY_AWS_ROLE_ARN=arn:aws:iam::123456789012:role/x",
		"SLIPWAY_AWS_EXTERNAL_ID=" + canary})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "aws", cfg.AWS)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "aws", cfg.AWS)
	fmt.Fprintf(&buf, "%v %+v %#v", cfg.AWS, cfg.AWS, cfg.AWS)
	if strings.Contains(buf.String(), canary) {
		t.Errorf("the external id is printed:\n%s", buf.String())
	}
}
