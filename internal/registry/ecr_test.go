package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/slipway-dev/slipway/internal/dockercli/dockertest"
)

const ecrHost = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"

// fakeECR hands out the passwords in order (the last one again once they run out), each valid
// for validity from the clock's now; and records repository creations.
type fakeECR struct {
	clock     *fakeClock
	validity  time.Duration
	passwords []string
	entered   chan struct{} // when set, told of each GetAuthorizationToken
	release   chan struct{} // when set, each GetAuthorizationToken waits for it
	err       error
	createErr error

	mu      sync.Mutex
	calls   int
	regions []string
	created []*ecr.CreateRepositoryInput
}

func (f *fakeECR) GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	o := ecr.Options{Region: "client-region"}
	for _, fn := range opts {
		fn(&o)
	}
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.regions = append(f.regions, o.Region)
	f.mu.Unlock()
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if f.err != nil {
		return nil, f.err
	}
	pw := f.passwords[min(n, len(f.passwords))-1]
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []ecrtypes.AuthorizationData{{
		AuthorizationToken: aws.String(base64.StdEncoding.EncodeToString([]byte("AWS:" + pw))),
		ExpiresAt:          aws.Time(f.clock.Now().Add(f.validity)),
		ProxyEndpoint:      aws.String("https://" + ecrHost),
	}}}, nil
}

func (f *fakeECR) CreateRepository(ctx context.Context, in *ecr.CreateRepositoryInput, opts ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, in)
	if f.createErr != nil {
		return nil, f.createErr
	}
	return &ecr.CreateRepositoryOutput{}, nil
}

func (f *fakeECR) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeClock is a clock the test moves; each reading is told to reads when set.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	reads chan struct{}
}

func (c *fakeClock) Now() time.Time {
	if c.reads != nil {
		c.reads <- struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestECR(t *testing.T, cfg ECRConfig, api *fakeECR, next Credentials) *ECR {
	t.Helper()
	cfg.Now = api.clock.Now
	e, err := NewECR(cfg, api, api, next, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func wantLogin(t *testing.T, e *ECR, host, wantPassword string) {
	t.Helper()
	user, password, ok, err := e.Lookup(context.Background(), host)
	if err != nil || !ok || user != "AWS" || password != wantPassword {
		t.Fatalf("Lookup(%s) = %q, %q, %v, %v; want AWS, %q", host, user, password, ok, err, wantPassword)
	}
}

// A token is reused until Early before it expires, per host; a refused one is forgotten.
func TestECRTokenCache(t *testing.T) {
	clock := &fakeClock{now: epoch}
	api := &fakeECR{clock: clock, validity: 12 * time.Hour, passwords: []string{"pw-1", "pw-2", "pw-3", "pw-4", "pw-5"}}
	e := newTestECR(t, ECRConfig{Region: "us-east-1", RegistryOverride: "127.0.0.1:5000", Early: 5 * time.Minute}, api,
		Static{"reg.example.com": {"u", "static-pw"}})

	wantLogin(t, e, ecrHost, "pw-1")
	wantLogin(t, e, ecrHost, "pw-1")
	if n := api.count(); n != 1 {
		t.Fatalf("%d GetAuthorizationToken calls for one host, want 1: the token was not cached", n)
	}

	clock.Set(epoch.Add(12*time.Hour - 5*time.Minute - time.Second))
	wantLogin(t, e, ecrHost, "pw-1")
	clock.Set(epoch.Add(12*time.Hour - 5*time.Minute))
	wantLogin(t, e, ecrHost, "pw-2") // within Early of expiring: replaced
	if n := api.count(); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}

	// A refusal of an older token keeps the newer one; a refusal of the current one drops it.
	if !e.Invalidate(ecrHost, "pw-1") {
		t.Error("Invalidate of an ECR host said a fresh Lookup would not help")
	}
	wantLogin(t, e, ecrHost, "pw-2")
	e.Invalidate(ecrHost, "pw-2")
	wantLogin(t, e, ecrHost, "pw-3")

	// Each host has its own token, fetched in its own region; the override's in the client's.
	wantLogin(t, e, "127.0.0.1:5000", "pw-4")
	wantLogin(t, e, "987654321098.dkr.ecr.ap-south-2.amazonaws.com", "pw-5")
	api.mu.Lock()
	regions := strings.Join(api.regions, ",")
	api.mu.Unlock()
	if want := "eu-west-1,eu-west-1,eu-west-1,us-east-1,ap-south-2"; regions != want {
		t.Errorf("GetAuthorizationToken regions %s, want %s", regions, want)
	}

	// Other hosts: the next credentials, no ECR call, nothing to invalidate.
	calls := api.count()
	if u, p, ok, err := e.Lookup(context.Background(), "reg.example.com"); err != nil || !ok || u != "u" || p != "static-pw" {
		t.Errorf("Lookup(reg.example.com) = %q, %q, %v, %v; want the static login", u, p, ok, err)
	}
	if _, _, ok, err := e.Lookup(context.Background(), "other.example.com"); ok || err != nil {
		t.Errorf("Lookup(other.example.com) = %v, %v; want nothing", ok, err)
	}
	for _, host := range []string{"reg.example.com", "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example", "dkr.ecr.eu-west-1.amazonaws.com"} {
		if e.Invalidate(host, "static-pw") {
			t.Errorf("Invalidate(%s) = true for a host that is not ECR's", host)
		}
	}
	if api.count() != calls {
		t.Errorf("hosts that are not ECR's made GetAuthorizationToken calls")
	}
}

// Pushes that want a token at the same time share one GetAuthorizationToken.
func TestECRConcurrentLookups(t *testing.T) {
	const callers = 8
	// Each caller reads the clock once to find no token (the flight once more, to be sure).
	clock := &fakeClock{now: epoch, reads: make(chan struct{}, 4*callers)}
	api := &fakeECR{clock: clock, validity: time.Hour, passwords: []string{"pw-1", "pw-2"},
		entered: make(chan struct{}, callers), release: make(chan struct{})}
	e := newTestECR(t, ECRConfig{}, api, nil)

	errs := make(chan error, callers)
	for range callers {
		go func() {
			_, p, ok, err := e.Lookup(context.Background(), ecrHost)
			if err == nil && (!ok || p != "pw-1") {
				err = fmt.Errorf("got %q, %v", p, ok)
			}
			errs <- err
		}()
	}
	<-api.entered
	// As many clock readings as callers: at least all callers but one have found no token, and
	// would call ECR themselves unless they joined the flight.
	for range callers {
		<-clock.reads
	}
	close(api.release)
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := api.count(); n != 1 {
		t.Errorf("%d GetAuthorizationToken calls for %d concurrent lookups, want 1", n, callers)
	}
}

// A caller that gives up does not fail the fetch the others wait for; errors name the host.
func TestECRLookupErrors(t *testing.T) {
	clock := &fakeClock{now: epoch}
	api := &fakeECR{clock: clock, validity: time.Hour, passwords: []string{"pw-1"},
		entered: make(chan struct{}, 2), release: make(chan struct{})}
	e := newTestECR(t, ECRConfig{}, api, nil)

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() { _, _, _, err := e.Lookup(ctx, ecrHost); gaveUp <- err }()
	<-api.entered
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Lookup = %v, want context.Canceled", err)
	}
	close(api.release)
	wantLogin(t, e, ecrHost, "pw-1")
	if n := api.count(); n != 1 {
		t.Errorf("%d calls: the cancelled caller's fetch was not kept", n)
	}

	denied := &fakeECR{clock: clock, err: errors.New("AccessDeniedException: not authorized to perform: ecr:GetAuthorizationToken")}
	e = newTestECR(t, ECRConfig{}, denied, nil)
	_, _, ok, err := e.Lookup(context.Background(), ecrHost)
	if ok || err == nil || !strings.Contains(err.Error(), "ecr:GetAuthorizationToken") || !strings.Contains(err.Error(), ecrHost) {
		t.Errorf("Lookup = %v, %v; want the SDK's error naming the permission and the host", ok, err)
	}
}

// The 401 refresh of a digest read: a token the registry refuses is replaced once by a fresh one;
// a fresh one refused too is an error, not a loop.
func TestECRDigestRefreshesRefusedToken(t *testing.T) {
	const good = "good-token-password"
	for _, tt := range []struct {
		name      string
		passwords []string
		wantErr   string
		wantCalls int
	}{
		{"fresh token", []string{good}, "", 1},
		{"stale token replaced", []string{"revoked-token", good}, "", 2},
		{"fresh token refused too", []string{"revoked-token", "also-revoked"}, "refused the credentials", 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeRegistry{auth: "basic", user: "AWS", password: good}
			srv := httptest.NewServer(fake.handler(t))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			api := &fakeECR{clock: &fakeClock{now: epoch}, validity: 12 * time.Hour, passwords: tt.passwords}
			creds := newTestECR(t, ECRConfig{RegistryOverride: host}, api, nil)
			r, err := New(Config{Engine: dockertest.Engine(t, "/bin/true", "")}, creds, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := r.Digest(context.Background(), host+"/app:v1")
			if n := api.count(); n != tt.wantCalls {
				t.Errorf("%d GetAuthorizationToken calls, want %d", n, tt.wantCalls)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Digest = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !ok || got != testDigest {
				t.Fatalf("Digest = %q, %v, %v", got, ok, err)
			}
		})
	}
}

// The 401 refresh of a push: docker push refused with a stale token runs once more with a fresh
// one; static logins are never retried.
func TestECRPushRefreshesRefusedToken(t *testing.T) {
	const good = "good-token-password"
	goodAuth := base64.StdEncoding.EncodeToString([]byte("AWS:" + good))
	for _, tt := range []struct {
		name      string
		ecr       []string // nil: a static login of "stale-password"
		wantRuns  int
		wantCalls int
		wantErr   string
	}{
		{"stale token replaced", []string{"stale-password", good}, 2, 2, ""},
		{"fresh token refused too", []string{"stale-password", "stale-password-2"}, 2, 2, "unauthorized"},
		{"static login not retried", nil, 1, 0, "unauthorized"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeRegistry{auth: "basic", user: "AWS", password: good}
			srv := httptest.NewServer(fake.handler(t))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")

			// The stand-in docker pushes only with the good login, and counts its runs.
			dir := t.TempDir()
			runs := filepath.Join(dir, "runs")
			docker := filepath.Join(dir, "docker")
			script := "#!/bin/sh\necho run >> " + runs + "\n" +
				`if grep -q '"` + goodAuth + `"' "$DOCKER_CONFIG/config.json"; then` + "\n" +
				`  echo "v1: digest: ` + testDigest + ` size: 528"; exit 0` + "\nfi\n" +
				`echo "unauthorized: authentication required" >&2; exit 1` + "\n"
			if err := os.WriteFile(docker, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			api := &fakeECR{clock: &fakeClock{now: epoch}, validity: 12 * time.Hour, passwords: tt.ecr}
			var creds Credentials = Static{host: {"AWS", "stale-password"}}
			if tt.ecr != nil {
				creds = newTestECR(t, ECRConfig{RegistryOverride: host}, api, nil)
			}
			r, err := New(Config{Engine: dockertest.Engine(t, docker, ""), StateDir: t.TempDir()}, creds,
				slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			var out lines
			got, err := r.Push(context.Background(), host+"/app:v1", out.log)
			b, _ := os.ReadFile(runs)
			if n := strings.Count(string(b), "run"); n != tt.wantRuns {
				t.Errorf("docker push ran %d times, want %d:\n%s", n, tt.wantRuns, out.String())
			}
			if n := api.count(); n != tt.wantCalls {
				t.Errorf("%d GetAuthorizationToken calls, want %d", n, tt.wantCalls)
			}
			noConfigLeft(t, r)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Push = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != testDigest {
				t.Fatalf("Push = %q, %v\n%s", got, err, out.String())
			}
			if !strings.Contains(out.String(), "refused the login") {
				t.Errorf("the push log does not say why it pushed twice:\n%s", out.String())
			}
		})
	}
}

// Repositories are created before the first push to them when allowed, with the configured
// settings, in the host's account and region; an existing one is fine; a failure stops the push.
func TestECRCreatesRepositories(t *testing.T) {
	clock := &fakeClock{now: epoch}
	api := &fakeECR{clock: clock, validity: time.Hour, passwords: []string{"pw"}}
	e := newTestECR(t, ECRConfig{CreateRepositories: true, TagImmutability: true, ScanOnPush: true}, api, nil)
	ctx := context.Background()
	for _, repo := range []string{"acme/api", "acme/api", "acme/web"} {
		if err := e.PreparePush(ctx, ecrHost, repo); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.PreparePush(ctx, "reg.example.com", "acme/api"); err != nil {
		t.Fatal(err)
	}
	if len(api.created) != 2 {
		t.Fatalf("%d CreateRepository calls, want 2 (one per ECR repository)", len(api.created))
	}
	in := api.created[0]
	if aws.ToString(in.RepositoryName) != "acme/api" || aws.ToString(in.RegistryId) != "123456789012" ||
		in.ImageTagMutability != ecrtypes.ImageTagMutabilityImmutable || in.ImageScanningConfiguration == nil || !in.ImageScanningConfiguration.ScanOnPush {
		t.Errorf("CreateRepository(%+v), want acme/api in 123456789012, immutable, scanned on push", in)
	}

	api.createErr = &ecrtypes.RepositoryAlreadyExistsException{Message: aws.String("exists")}
	if err := e.PreparePush(ctx, ecrHost, "acme/existing"); err != nil {
		t.Errorf("an existing repository: %v", err)
	}

	api.createErr = errors.New("AccessDeniedException: not authorized to perform: ecr:CreateRepository")
	err := e.PreparePush(ctx, ecrHost, "acme/denied")
	if err == nil || !strings.Contains(err.Error(), "ecr:CreateRepository") || !strings.Contains(err.Error(), "acme/denied") {
		t.Errorf("PreparePush = %v, want the SDK's error naming the repository and the permission", err)
	}

	// Not allowed: never created.
	off := &fakeECR{clock: clock, validity: time.Hour, passwords: []string{"pw"}}
	if err := newTestECR(t, ECRConfig{}, off, nil).PreparePush(ctx, ecrHost, "acme/api"); err != nil || len(off.created) != 0 {
		t.Errorf("creation disabled: %v, %d calls", err, len(off.created))
	}

	// Push prepares first, and a failure stops it before docker runs.
	docker := filepath.Join(t.TempDir(), "docker")
	if err := os.WriteFile(docker, []byte("#!/bin/sh\necho docker ran\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := New(Config{Engine: dockertest.Engine(t, docker, ""), StateDir: t.TempDir()}, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out lines
	if _, err := r.Push(ctx, ecrHost+"/acme/denied2:v1", out.log); err == nil || !strings.Contains(err.Error(), "ecr:CreateRepository") {
		t.Errorf("Push = %v, want the repository creation's error", err)
	}
	if strings.Contains(out.String(), "docker ran") {
		t.Error("docker push ran although the repository could not be created")
	}
}

func TestECRHosts(t *testing.T) {
	e := newTestECR(t, ECRConfig{Region: "us-east-1", RegistryOverride: "localhost:5000"}, &fakeECR{clock: &fakeClock{}}, nil)
	for host, want := range map[string]string{
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com":          "123456789012 eu-west-1",
		"123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com": "123456789012 us-gov-west-1",
		"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn":      "123456789012 cn-north-1",
		"localhost:5000":                                           " us-east-1",
		"localhost:5001":                                           "",
		"12345.dkr.ecr.eu-west-1.amazonaws.com":                    "",
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com:443x":        "",
		"public.ecr.aws":                                           "",
		"123456789012.dkr.ecr.eu-west-1.amazonaws.com.example.com": "",
	} {
		account, region, ok := e.registry(host)
		got := ""
		if ok {
			got = account + " " + region
		}
		if got != want {
			t.Errorf("registry(%s) = %q, want %q", host, got, want)
		}
	}
}
