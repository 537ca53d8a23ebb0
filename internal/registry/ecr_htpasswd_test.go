package registry

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
	"github.com/slipway-dev/slipway/internal/imagebuild"
	"github.com/slipway-dev/slipway/internal/testenv"
)

// The ECR token is the password docker push and the digest read give a registry that checks it by
// basic auth against htpasswd, as a registry behind the override does; one whose htpasswd holds
// another password refuses the push, and the error says so.
func TestECRTokenBasicAuth(t *testing.T) {
	e := dockertest.Require(t)
	url := testenv.Moto(t)
	const region = "us-east-1"
	client := ecr.New(ecr.Options{
		Region:       region,
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSLIPWAYTEST", "secret", ""),
		Retryer:      retry.NewStandard(),
	})
	out, err := client.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(aws.ToString(out.AuthorizationData[0].AuthorizationToken))
	user, password, _ := strings.Cut(string(raw), ":")

	for _, c := range []struct {
		name, htpasswd string
		ok             bool
	}{
		{"token", password, true},
		{"another password", password + "-not", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := testenv.AuthRegistry(t, user, c.htpasswd)
			if got := testenv.BasicAuthStatus(t, host, user, "wrong"); got != 401 {
				t.Fatalf("registry answered %d to a wrong password, want 401", got)
			}
			creds, err := NewECR(ECRConfig{Region: region, RegistryOverride: host}, client, nil, nil, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			ref := host + "/slipway-test/basic-" + nonce() + ":v1"
			buildImage(t, e, imagebuild.BuildKitOn, ref)
			r, err := New(Config{Engine: dockertest.Engine(t, e.CLI, e.Host), StateDir: t.TempDir()}, creds, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			var log lines
			d, err := r.Push(t.Context(), ref, log.log)
			assertNoSecret(t, "push log", log.String(), user, password)
			if err != nil {
				assertNoSecret(t, "push error", err.Error(), user, password)
			}
			if !c.ok {
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
					t.Fatalf("Push with a refused token: %v, want unauthorized\n%s", err, log.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("Push: %v\n%s", err, log.String())
			}
			got, ok, err := r.Digest(t.Context(), ref[:strings.LastIndexByte(ref, ':')]+"@"+d)
			if err != nil || !ok || got != d {
				t.Errorf("Digest by digest = %q, %v, %v; want %s", got, ok, err, d)
			}
			noConfigLeft(t, r)
		})
	}
}
