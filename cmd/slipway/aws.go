package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/rollout/ecs"
)

// credentialsCheck bounds the start-up check of the AWS credentials: long enough for the chain
// to try every source (IMDS included) and for one AssumeRole, short enough not to hold up start.
const credentialsCheck = 10 * time.Second

// awsClients are the server's AWS API clients, made from one aws.Config. Their retries and
// throttling are the SDK's standard retryer.
type awsClients struct {
	cfg config.AWS
	ecs *awsecs.Client
	ecr *ecr.Client
}

// newAWS builds the AWS clients once, nil when AWS is not configured (no aws.region). The
// credentials are the SDK's default chain, exchanged for aws.role_arn's through STS when it is
// set. Credentials that cannot be had do not stop the server: it warns, naming what is missing,
// and every ECS or ECR call fails with the SDK's error, which names it too.
func newAWS(ctx context.Context, c config.AWS, logger *slog.Logger) *awsClients {
	if !c.Enabled() {
		return nil
	}
	cfg := loadAWSConfig(ctx, c)
	checkCredentials(ctx, cfg, c, logger)
	return &awsClients{
		cfg: c,
		ecs: awsecs.NewFromConfig(cfg, func(o *awsecs.Options) { o.BaseEndpoint = endpoint(c.Endpoints.ECS) }),
		ecr: ecr.NewFromConfig(cfg, func(o *ecr.Options) { o.BaseEndpoint = endpoint(c.Endpoints.ECR) }),
	}
}

// loadAWSConfig is the aws.Config every client is made from (doctor's STS check too).
func loadAWSConfig(ctx context.Context, c config.AWS) aws.Config {
	standard := func() aws.Retryer { return retry.NewStandard() }
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(c.Region), awsconfig.WithRetryer(standard))
	if err != nil {
		// A named profile that does not exist, a shared config file that does not parse.
		err = fmt.Errorf("loading the AWS shared configuration: %w", err)
		cfg = aws.Config{Region: c.Region, Retryer: standard, Credentials: failing{err}}
	}
	if c.RoleARN != "" {
		client := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = endpoint(c.Endpoints.STS) })
		role := stscreds.NewAssumeRoleProvider(client, c.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = "slipway"
			if c.ExternalID != "" {
				o.ExternalID = aws.String(c.ExternalID.Reveal())
			}
		})
		// Renewed a minute early, so that no call is signed with credentials about to expire.
		cfg.Credentials = aws.NewCredentialsCache(role, func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = time.Minute })
	}
	return cfg
}

// endpoint is an endpoint override as the clients' BaseEndpoint: nil for the SDK's own.
func endpoint(url string) *string {
	if url == "" {
		return nil
	}
	return aws.String(url)
}

// checkCredentials retrieves the credentials once, so that missing ones are in the log at start
// rather than first seen in a failed deployment. It never logs a key.
func checkCredentials(ctx context.Context, cfg aws.Config, c config.AWS, logger *slog.Logger) {
	if cfg.Credentials == nil {
		cfg.Credentials = failing{errors.New("no credentials provider")}
	}
	cctx, cancel := context.WithTimeout(ctx, credentialsCheck)
	defer cancel()
	creds, err := cfg.Credentials.Retrieve(cctx)
	if err != nil {
		missing := "AWS credentials: none of the default chain's sources (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " +
			"AWS_PROFILE and ~/.aws, a web identity token, an ECS task role, an EC2 instance role) gave any"
		if c.RoleARN != "" {
			missing = "AWS credentials for role " + c.RoleARN + ": sts:AssumeRole with the default chain's credentials failed"
		}
		logger.WarnContext(ctx, "AWS is configured but its credentials are unavailable: ECS deployments and ECR pushes will fail until they are",
			"missing", missing, "region", c.Region, "err", err)
		return
	}
	logger.InfoContext(ctx, "AWS credentials found", "source", creds.Source, "region", c.Region, "role_arn", c.RoleARN,
		"ecs_endpoint", c.Endpoints.ECS, "ecr_endpoint", c.Endpoints.ECR, "sts_endpoint", c.Endpoints.STS)
}

// failing is a credentials provider that gives the reason there are none.
type failing struct{ err error }

func (f failing) Retrieve(context.Context) (aws.Credentials, error) { return aws.Credentials{}, f.err }

// ecsTarget is the "ecs" target, deploying with the server's credentials in aws.region. A
// rollback asks images whether the image it goes back to is still there.
func (a *awsClients) ecsTarget(images ecs.Images, logger *slog.Logger) (*ecs.Target, error) {
	return ecs.New(ecs.Config{Images: images}, a.ecs, logger)
}

// credentials are ECR tokens for ECR hosts and aws.ecr.registry_override, next for the others.
// A token is replaced at least one push timeout before it expires, so that no push outlives it.
func (a *awsClients) credentials(next registry.Credentials, pushTimeout time.Duration, logger *slog.Logger) (*registry.ECR, error) {
	e := a.cfg.ECR
	return registry.NewECR(registry.ECRConfig{
		Region:             a.cfg.Region,
		RegistryOverride:   e.RegistryOverride,
		CreateRepositories: e.CreateRepositories,
		TagImmutability:    e.TagImmutability,
		ScanOnPush:         e.ScanOnPush,
		Early:              max(5*time.Minute, pushTimeout),
	}, a.ecr, a.ecr, next, logger)
}
