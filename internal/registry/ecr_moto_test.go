package registry

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/imagebuild"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// TestECRMoto makes every ECR call the credentials make through the real SDK client, pointed at
// moto with BaseEndpoint: real request and response shapes. moto's tokens say they expired in
// 2015, so they are used once and never cached; the cache is TestECRTokenCache's.
func TestECRMoto(t *testing.T) {
	url := testenv.Moto(t)
	const region = "us-east-1"
	client := ecr.New(ecr.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSLIPWAYTEST", "secret", ""),
		Retryer:      retry.NewStandard(),
	})
	ctx := t.Context()
	host := "123456789012.dkr.ecr." + region + ".amazonaws.com"

	t.Run("token", func(t *testing.T) {
		e, err := NewECR(ECRConfig{Region: region}, client, nil, nil, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		user, password, ok, err := e.Lookup(ctx, host)
		if err != nil || !ok {
			t.Fatalf("Lookup = %v, %v", ok, err)
		}
		out, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
		if user+":"+password != string(raw) || user != "AWS" {
			t.Errorf("Lookup = %q and a password of %d bytes; ECR's token decodes to %d bytes", user, len(password), len(raw))
		}
		if l := e.logins[host]; !l.expires.Equal(aws.ToTime(out.AuthorizationData[0].ExpiresAt)) {
			t.Errorf("token expires %s, ECR says %s", l.expires, aws.ToTime(out.AuthorizationData[0].ExpiresAt))
		}
	})

	t.Run("create repository", func(t *testing.T) {
		testenv.ResetMoto(t, url)
		cfg := ECRConfig{Region: region, CreateRepositories: true, TagImmutability: true, ScanOnPush: true}
		e, err := NewECR(cfg, client, client, nil, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.PreparePush(ctx, host, "acme/api"); err != nil {
			t.Fatal(err)
		}
		repo := describeRepository(t, client, "acme/api")
		if repo.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutable || repo.ImageScanningConfiguration == nil ||
			!repo.ImageScanningConfiguration.ScanOnPush {
			t.Errorf("repository created %s, scan %+v; want IMMUTABLE, scanned on push", repo.ImageTagMutability, repo.ImageScanningConfiguration)
		}
		// Another server (nothing known yet) finds it there: ECR's "already exists" is no error.
		again, err := NewECR(cfg, client, client, nil, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := again.PreparePush(ctx, host, "acme/api"); err != nil {
			t.Errorf("PreparePush of an existing repository: %v", err)
		}
	})

	// The ECR token reaches docker push and the digest read: a registry that takes only the token
	// moto gives (its token server checks the password) stands in for ECR through the override.
	t.Run("push with the token", func(t *testing.T) {
		e := dockertest.Require(t)
		testenv.ResetMoto(t, url)
		out, err := client.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
		user, password, _ := strings.Cut(string(raw), ":")
		regHost := startAuthRegistry(t, user, password)

		creds, err := NewECR(ECRConfig{Region: region, RegistryOverride: regHost, CreateRepositories: true}, client, client,
			Static{regHost: {user, "not-the-token"}}, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		repoName := "slipway-test/ecr-" + nonce()
		ref := regHost + "/" + repoName + ":v1"
		buildImage(t, e, imagebuild.BuildKitOn, ref)
		r, err := New(Config{Engine: dockertest.Engine(t, e.CLI, e.Host), StateDir: t.TempDir()}, creds, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		var log lines
		d, err := r.Push(ctx, ref, log.log)
		if err != nil {
			t.Fatalf("Push: %v\n%s", err, log.String())
		}
		assertNoSecret(t, "push log", log.String(), user, password)
		got, ok, err := r.Digest(ctx, ref)
		if err != nil || !ok || got != d {
			t.Errorf("Digest = %q, %v, %v; want %s", got, ok, err, d)
		}
		describeRepository(t, client, repoName) // created before the push
		noConfigLeft(t, r)
	})
}

func describeRepository(t *testing.T, client *ecr.Client, name string) ecrtypes.Repository {
	t.Helper()
	out, err := client.DescribeRepositories(t.Context(), &ecr.DescribeRepositoriesInput{RepositoryNames: []string{name}})
	if err != nil || len(out.Repositories) != 1 {
		t.Fatalf("describing repository %s: %v", name, err)
	}
	return out.Repositories[0]
}
