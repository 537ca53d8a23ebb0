package config

import (
	"net/url"
	"regexp"
	"strings"
)

// AWS is how the server reaches AWS: ECS targets and ECR registries. Credentials are never here:
// they come from the SDK's default chain (environment, shared profile, web identity, ECS task
// role, EC2 instance role), optionally exchanged for RoleARN's through STS. Nothing in a
// repository's pipeline file changes any of it.
type AWS struct {
	// Region is the region of the ECS clusters and of the STS and ECR calls. Setting it turns AWS
	// on: without it the server has no "ecs" target and ECR hosts get the static logins only.
	Region string `yaml:"region"`
	// RoleARN, when set, is assumed through STS (AssumeRole) with the chain's credentials, and
	// every ECS and ECR call is made as that role.
	RoleARN string `yaml:"role_arn"`
	// ExternalID is sent with AssumeRole, for a role whose trust policy asks for one.
	ExternalID Secret       `yaml:"external_id"`
	Endpoints  AWSEndpoints `yaml:"endpoints"`
	ECR        ECR          `yaml:"ecr"`
}

// AWSEndpoints override the endpoint of a service (an emulator, a VPC endpoint): a base URL
// such as https://vpce-0abc.ecs.eu-west-1.vpce.amazonaws.com; "" is the SDK's regional endpoint.
type AWSEndpoints struct {
	ECS string `yaml:"ecs"`
	ECR string `yaml:"ecr"`
	STS string `yaml:"sts"`
}

// ECR configures pushes to Amazon ECR registries (hosts ACCOUNT.dkr.ecr.REGION.amazonaws.com),
// whose logins are tokens from ECR's GetAuthorizationToken.
type ECR struct {
	// RegistryOverride is one more registry host ("127.0.0.1:5000") whose login is an ECR token:
	// a local registry standing in for ECR in tests, or a pull-through proxy in front of it.
	RegistryOverride string `yaml:"registry_override"`
	// CreateRepositories lets a push create its ECR repository when it does not exist yet.
	CreateRepositories bool `yaml:"create_repositories"`
	// TagImmutability and ScanOnPush are the settings of the repositories Slipway creates.
	TagImmutability bool `yaml:"tag_immutability"`
	ScanOnPush      bool `yaml:"scan_on_push"`
}

// Enabled reports whether AWS is configured: a region is set.
func (a AWS) Enabled() bool { return a.Region != "" }

var (
	// regionRE is a region's shape: us-east-1, us-gov-west-1, cn-north-1, eusc-de-east-1.
	regionRE = regexp.MustCompile(`^[a-z]{2,}(-[a-z]+)+-[0-9]+$`)
	// roleARNRE is an IAM role's ARN in any partition (aws, aws-cn, aws-us-gov, …).
	roleARNRE    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	externalIDRE = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
)

// validateAWS checks the aws keys. Values are quoted only where they hold no secret.
func (c *Config) validateAWS(bad func(key, format string, args ...any)) {
	a := &c.AWS
	a.Region = strings.TrimSpace(a.Region)
	if a.Region == "" {
		// Without a region nothing else would be used: say so rather than ignore it.
		if a.RoleARN != "" || a.ExternalID != "" || a.Endpoints != (AWSEndpoints{}) || a.ECR != (ECR{}) {
			bad("aws.region (SLIPWAY_AWS_REGION)", "required when other aws keys are set")
		}
		return
	}
	if !regionRE.MatchString(a.Region) {
		bad("aws.region (SLIPWAY_AWS_REGION)", "%q is not an AWS region like eu-west-1", a.Region)
	}
	if a.RoleARN != "" && !roleARNRE.MatchString(a.RoleARN) {
		bad("aws.role_arn (SLIPWAY_AWS_ROLE_ARN)", "%q is not an IAM role ARN (arn:aws:iam::ACCOUNT_ID:role/NAME)", a.RoleARN)
	}
	if a.ExternalID != "" {
		switch {
		case a.RoleARN == "":
			bad("aws.external_id (SLIPWAY_AWS_EXTERNAL_ID)", "is sent only when assuming aws.role_arn, which is not set")
		case len(a.ExternalID) < 2 || len(a.ExternalID) > 1224 || !externalIDRE.MatchString(a.ExternalID.Reveal()):
			bad("aws.external_id (SLIPWAY_AWS_EXTERNAL_ID)", "must be 2 to 1224 letters, digits or +=,.@:/-_ (value not shown)")
		}
	}
	for _, ep := range []struct{ key, v string }{
		{"aws.endpoints.ecs (SLIPWAY_AWS_ECS_ENDPOINT)", a.Endpoints.ECS},
		{"aws.endpoints.ecr (SLIPWAY_AWS_ECR_ENDPOINT)", a.Endpoints.ECR},
		{"aws.endpoints.sts (SLIPWAY_AWS_STS_ENDPOINT)", a.Endpoints.STS},
	} {
		if ep.v == "" {
			continue
		}
		u, err := url.Parse(ep.v)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad(ep.key, "must be an http or https base URL (value not shown)")
		case u.User != nil:
			bad(ep.key, "must not contain credentials (value not shown)")
		}
	}
	if h := a.ECR.RegistryOverride; h != "" && !hostRE.MatchString(h) {
		bad("aws.ecr.registry_override (SLIPWAY_AWS_ECR_REGISTRY_OVERRIDE)", "%q is not a registry host[:port]", h)
	}
	if !a.ECR.CreateRepositories {
		if a.ECR.TagImmutability {
			bad("aws.ecr.tag_immutability (SLIPWAY_AWS_ECR_TAG_IMMUTABILITY)", "applies to the repositories Slipway creates: set aws.ecr.create_repositories too")
		}
		if a.ECR.ScanOnPush {
			bad("aws.ecr.scan_on_push (SLIPWAY_AWS_ECR_SCAN_ON_PUSH)", "applies to the repositories Slipway creates: set aws.ecr.create_repositories too")
		}
	}
}

// hostRE is a registry host[:port]: a DNS name or an IP address, with an optional port.
var hostRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$`)
