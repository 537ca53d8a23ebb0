package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/slipway-dev/slipway/internal/config"
	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/registry"
	"github.com/slipway-dev/slipway/internal/testenv"
)

const (
	chainKey      = "AKIDCHAINTEST"
	chainSecret   = "chain-secret-access-key"
	assumedKey    = "ASIAASSUMEDTEST"
	assumedSecret = "assumed-secret-access-key"
	assumedToken  = "assumed-session-token"
	externalID    = "external-id-1234"
	roleARN       = "arn:aws:iam::123456789012:role/slipway-deployer"
	ecrHost       = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
)

// awsEnv leaves the SDK's default chain only what the test gives it: no profile, no files, no
// instance metadata, no container credentials; the access key pair when keys is true.
func awsEnv(t *testing.T, keys bool) {
	dir := t.TempDir()
	for _, kv := range [][2]string{
		{"AWS_CONFIG_FILE", filepath.Join(dir, "config")},
		{"AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials")},
		{"AWS_EC2_METADATA_DISABLED", "true"},
		{"AWS_PROFILE", ""}, {"AWS_DEFAULT_PROFILE", ""}, {"AWS_REGION", ""}, {"AWS_DEFAULT_REGION", ""},
		{"AWS_ACCESS_KEY_ID", ""}, {"AWS_ACCESS_KEY", ""}, {"AWS_SECRET_ACCESS_KEY", ""}, {"AWS_SECRET_KEY", ""},
		{"AWS_SESSION_TOKEN", ""}, {"AWS_WEB_IDENTITY_TOKEN_FILE", ""}, {"AWS_ROLE_ARN", ""},
		{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", ""}, {"AWS_CONTAINER_CREDENTIALS_FULL_URI", ""},
		{"AWS_ENDPOINT_URL", ""}, {"AWS_ENDPOINT_URL_ECS", ""}, {"AWS_ENDPOINT_URL_ECR", ""}, {"AWS_ENDPOINT_URL_STS", ""},
	} {
		t.Setenv(kv[0], kv[1])
	}
	if keys {
		t.Setenv("AWS_ACCESS_KEY_ID", chainKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", chainSecret)
	}
}

// fakeAWS is STS, ECS and ECR, each on a server of its own so that each endpoint override is seen
// to reach its own client. It records who signed each call.
type fakeAWS struct {
	sts, ecs, ecr *httptest.Server
	denyAssume    bool

	mu      sync.Mutex
	assumes []url.Values
	calls   map[string][]string // service → "target signed-by security-token"
}

func newFakeAWS(t *testing.T) *fakeAWS {
	f := &fakeAWS{calls: map[string][]string{}}
	record := func(service string, r *http.Request, what string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		key := "unsigned"
		if authz := r.Header.Get("Authorization"); strings.Contains(authz, "Credential=") {
			key, _, _ = strings.Cut(authz[strings.Index(authz, "Credential=")+len("Credential="):], ",")
		}
		f.calls[service] = append(f.calls[service], what+" "+key+" "+r.Header.Get("X-Amz-Security-Token"))
	}
	f.sts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("Action") != "AssumeRole" {
			http.Error(w, "unexpected STS call", http.StatusBadRequest)
			return
		}
		record("sts", r, "AssumeRole")
		f.mu.Lock()
		f.assumes = append(f.assumes, r.PostForm)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		if f.denyAssume {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>`+
				`<Message>User: arn:aws:iam::123456789012:user/slipway is not authorized to perform: sts:AssumeRole on resource: %s</Message>`+
				`</Error><RequestId>req-1</RequestId></ErrorResponse>`, r.PostForm.Get("RoleArn"))
			return
		}
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>`+
			`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken>`+
			`<Expiration>%s</Expiration></Credentials>`+
			`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/slipway-deployer/slipway</Arn><AssumedRoleId>AROATEST:slipway</AssumedRoleId></AssumedRoleUser>`+
			`</AssumeRoleResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			assumedKey, assumedSecret, assumedToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	t.Cleanup(f.sts.Close)
	f.ecs = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("ecs", r, r.Header.Get("X-Amz-Target"))
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"clusters":[],"failures":[]}`)
	}))
	t.Cleanup(f.ecs.Close)
	f.ecr = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record("ecr", r, r.Header.Get("X-Amz-Target"))
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		fmt.Fprintf(w, `{"authorizationData":[{"authorizationToken":%q,"expiresAt":%d,"proxyEndpoint":"https://%s"}]}`,
			base64.StdEncoding.EncodeToString([]byte("AWS:ecr-token-password")), time.Now().Add(12*time.Hour).Unix(), ecrHost)
	}))
	t.Cleanup(f.ecr.Close)
	return f
}

func (f *fakeAWS) config() config.AWS {
	return config.AWS{Region: "eu-west-1", RoleARN: roleARN, ExternalID: externalID,
		Endpoints: config.AWSEndpoints{ECS: f.ecs.URL, ECR: f.ecr.URL, STS: f.sts.URL}}
}

func (f *fakeAWS) seen(service string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls[service]...)
}

func noSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range []string{chainSecret, assumedSecret, assumedToken, externalID} {
		if strings.Contains(text, s) {
			t.Errorf("%s shows a secret (%.6s…):\n%s", what, s, text)
		}
	}
}

func TestAWSNotConfigured(t *testing.T) {
	if a := newAWS(t.Context(), config.AWS{}, slog.New(slog.DiscardHandler)); a != nil {
		t.Errorf("newAWS without a region = %+v, want nil: no ecs target, no ECR", a)
	}
}

// The default chain's keys assume the role (with its external id) at the STS endpoint given, and
// ECS and ECR are called at theirs, in the region, as the role.
func TestAWSRoleAndEndpoints(t *testing.T) {
	awsEnv(t, true)
	f := newFakeAWS(t)
	var log testenv.SyncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard
	defer cancel()
	a := newAWS(ctx, f.config(), slog.New(slog.NewTextHandler(&log, nil)))
	if a == nil {
		t.Fatal("newAWS = nil with a region")
	}
	if !strings.Contains(log.String(), "AWS credentials found") || !strings.Contains(log.String(), "AssumeRoleProvider") {
		t.Errorf("start-up log does not say where the credentials came from:\n%s", log.String())
	}
	if _, err := a.ecs.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{"prod"}}); err != nil {
		t.Fatal(err)
	}
	ecrCreds, err := a.credentials(registry.Static{}, 10*time.Minute, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if u, p, ok, err := ecrCreds.Lookup(ctx, ecrHost); err != nil || !ok || u != "AWS" || p != "ecr-token-password" {
		t.Errorf("ECR Lookup = %q, %q, %v, %v", u, p, ok, err)
	}

	f.mu.Lock()
	assumes := f.assumes
	f.mu.Unlock()
	if len(assumes) != 1 {
		t.Fatalf("%d AssumeRole calls, want 1 (the credentials are cached)", len(assumes))
	}
	in := assumes[0]
	if in.Get("RoleArn") != roleARN || in.Get("ExternalId") != externalID || in.Get("RoleSessionName") != "slipway" {
		t.Errorf("AssumeRole(RoleArn %q, ExternalId %q, RoleSessionName %q)", in.Get("RoleArn"), in.Get("ExternalId"), in.Get("RoleSessionName"))
	}
	for service, want := range map[string]string{
		"sts": "AssumeRole " + chainKey + "/",
		"ecs": "AmazonEC2ContainerServiceV20141113.DescribeClusters " + assumedKey + "/",
		"ecr": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken " + assumedKey + "/",
	} {
		seen := f.seen(service)
		if len(seen) != 1 || !strings.HasPrefix(seen[0], want) || !strings.Contains(seen[0], "/eu-west-1/"+service+"/") {
			t.Errorf("%s endpoint saw %q, want one call signed %s… in eu-west-1", service, seen, want)
		}
		if service != "sts" && !strings.HasSuffix(seen[0], " "+assumedToken) {
			t.Errorf("%s call without the role's session token: %q", service, seen)
		}
	}
	noSecrets(t, "log", log.String())
}

// Without credentials the server starts with a warning that names what is missing, the ecs target
// is there, and its calls fail at once with the SDK's error naming the credentials, never reaching
// AWS and never hanging.
func TestAWSMissingCredentials(t *testing.T) {
	awsEnv(t, false)
	f := newFakeAWS(t)
	cfg := f.config()
	cfg.RoleARN, cfg.ExternalID = "", ""
	var log testenv.SyncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard
	defer cancel()
	a := newAWS(ctx, cfg, slog.New(slog.NewTextHandler(&log, nil)))
	if a == nil {
		t.Fatal("newAWS = nil with a region")
	}
	for _, want := range []string{"level=WARN", "credentials are unavailable", "AWS_ACCESS_KEY_ID", "instance role"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, log.String())
		}
	}

	target, err := a.ecsTarget(nil, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = target.Deploy(ctx, deploy.Rollout{
		Repo: "acme/api", Service: "api", Environment: "production",
		Image: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api@sha256:" + strings.Repeat("a", 64),
		Destination: deploy.Destination{Service: "api", Environment: "production", Platform: deploy.PlatformECS,
			ECS: &deploy.ECSService{Cluster: "prod", Service: "api", Container: "api"}},
	}, func(string, string) {})
	if err == nil || !strings.Contains(err.Error(), "credentials") {
		t.Errorf("Deploy without credentials = %v, want the SDK's error naming the credentials", err)
	}
	ecrCreds, err := a.credentials(nil, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ecrCreds.Lookup(ctx, ecrHost); err == nil || !strings.Contains(err.Error(), "GetAuthorizationToken") ||
		!strings.Contains(err.Error(), "credentials") {
		t.Errorf("ECR Lookup without credentials = %v, want the SDK's error naming the call and the credentials", err)
	}
	if seen := append(f.seen("ecs"), f.seen("ecr")...); len(seen) > 0 {
		t.Errorf("unsigned calls reached AWS: %q", seen)
	}
}

// A role that cannot be assumed: the warning names the role and STS's refusal, which names the
// permission; the external id is never shown.
func TestAWSRoleDenied(t *testing.T) {
	awsEnv(t, true)
	f := newFakeAWS(t)
	f.denyAssume = true
	var log testenv.SyncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard
	defer cancel()
	a := newAWS(ctx, f.config(), slog.New(slog.NewTextHandler(&log, nil)))
	for _, want := range []string{"level=WARN", roleARN, "not authorized to perform: sts:AssumeRole"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, log.String())
		}
	}
	_, err := a.ecs.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{"prod"}})
	if err == nil || !strings.Contains(err.Error(), "sts:AssumeRole") {
		t.Errorf("DescribeClusters as a role that cannot be assumed = %v, want STS's refusal", err)
	}
	noSecrets(t, "log", log.String())
}

// A profile that does not exist is a credentials problem like the others: a warning naming it,
// and calls that fail with it.
func TestAWSMissingProfile(t *testing.T) {
	awsEnv(t, false)
	t.Setenv("AWS_PROFILE", "no-such-profile")
	f := newFakeAWS(t)
	cfg := f.config()
	cfg.RoleARN, cfg.ExternalID = "", ""
	var log testenv.SyncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a hang guard
	defer cancel()
	a := newAWS(ctx, cfg, slog.New(slog.NewTextHandler(&log, nil)))
	for _, want := range []string{"level=WARN", "loading the AWS shared configuration", "no-such-profile"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("start-up log lacks %q:\n%s", want, log.String())
		}
	}
	_, err := a.ecs.DescribeClusters(ctx, &awsecs.DescribeClustersInput{Clusters: []string{"prod"}})
	if err == nil || !strings.Contains(err.Error(), "no-such-profile") {
		t.Errorf("DescribeClusters = %v, want the missing profile named", err)
	}
	if seen := f.seen("ecs"); len(seen) > 0 {
		t.Errorf("unsigned calls reached AWS: %q", seen)
	}
}
