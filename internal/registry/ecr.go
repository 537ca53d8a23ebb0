package registry

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"golang.org/x/sync/singleflight"
)

// ECRTokens is the ECR call that logs in; *ecr.Client satisfies it. Retries and throttling are
// the client's (the SDK's standard retryer).
type ECRTokens interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// ECRRepositories is the ECR call that creates a repository; *ecr.Client satisfies it.
type ECRRepositories interface {
	CreateRepository(ctx context.Context, in *ecr.CreateRepositoryInput, opts ...func(*ecr.Options)) (*ecr.CreateRepositoryOutput, error)
}

var (
	_ ECRTokens       = (*ecr.Client)(nil)
	_ ECRRepositories = (*ecr.Client)(nil)
)

// ECRConfig configures ECR credentials.
type ECRConfig struct {
	// Region is the ECR client's region: that of RegistryOverride's tokens. An ECR host's own
	// region (ACCOUNT.dkr.ecr.REGION.amazonaws.com) is used for its tokens and repositories.
	Region string
	// RegistryOverride is one more host ("127.0.0.1:5000") whose login is an ECR token of Region:
	// a local registry that stands in for ECR in tests, a proxy in front of it.
	RegistryOverride string
	// CreateRepositories creates a push's repository when it is missing, as TagImmutability and
	// ScanOnPush say; it needs a non-nil ECRRepositories.
	CreateRepositories, TagImmutability, ScanOnPush bool
	// Early is how long before it expires a token is replaced: 5m by default.
	Early time.Duration
	// FetchTimeout bounds one GetAuthorizationToken, which several pushes may be waiting for:
	// 1m by default.
	FetchTimeout time.Duration
	// Now is the clock that tokens expire by; time.Now by default.
	Now func() time.Time
}

// ECR is the Credentials of Amazon ECR registries: for an ECR host (and RegistryOverride) a token
// from GetAuthorizationToken, kept per host until Early before it expires and fetched once for
// all the pushes that want it at the same time; for any other host, the next Credentials (the
// static logins of the config). It forgets a token a registry refused (Invalidator) and, when
// allowed, creates a repository before the first push to it (Preparer). Safe for concurrent use.
type ECR struct {
	cfg    ECRConfig
	tokens ECRTokens
	repos  ECRRepositories
	next   Credentials
	logger *slog.Logger

	flights singleflight.Group
	mu      sync.Mutex
	logins  map[string]ecrLogin // by host
	exists  map[string]bool     // host/repository known to exist
}

type ecrLogin struct {
	user, password string
	expires        time.Time
}

var (
	_ Credentials = (*ECR)(nil)
	_ Invalidator = (*ECR)(nil)
	_ Preparer    = (*ECR)(nil)
)

// NewECR returns the ECR credentials; next (nil: none) answers for the hosts that are not ECR's.
// repos may be nil unless cfg.CreateRepositories.
func NewECR(cfg ECRConfig, tokens ECRTokens, repos ECRRepositories, next Credentials, logger *slog.Logger) (*ECR, error) {
	switch {
	case tokens == nil:
		return nil, errors.New("ecr credentials: an ECR API client is required")
	case cfg.CreateRepositories && repos == nil:
		return nil, errors.New("ecr credentials: creating repositories needs an ECR API client")
	case cfg.Early < 0 || cfg.FetchTimeout < 0:
		return nil, errors.New("ecr credentials: negative duration")
	}
	cfg.Early = cmp.Or(cfg.Early, 5*time.Minute)
	cfg.FetchTimeout = cmp.Or(cfg.FetchTimeout, time.Minute)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if next == nil {
		next = Static(nil)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ECR{cfg: cfg, tokens: tokens, repos: repos, next: next, logger: logger,
		logins: map[string]ecrLogin{}, exists: map[string]bool{}}, nil
}

// ecrHostRE is an ECR private registry host: ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn].
var ecrHostRE = regexp.MustCompile(`^([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$`)

// registry says whether host is an ECR registry, and its account ("" for the override) and region.
func (e *ECR) registry(host string) (account, region string, ok bool) {
	if m := ecrHostRE.FindStringSubmatch(strings.ToLower(host)); m != nil {
		return m[1], m[2], true
	}
	if e.cfg.RegistryOverride != "" && strings.EqualFold(host, e.cfg.RegistryOverride) {
		return "", e.cfg.Region, true
	}
	return "", "", false
}

// Lookup implements Credentials: an ECR token for an ECR host, the next credentials' login for
// any other.
func (e *ECR) Lookup(ctx context.Context, host string) (string, string, bool, error) {
	_, region, ok := e.registry(host)
	if !ok {
		return e.next.Lookup(ctx, host)
	}
	if l, ok := e.cached(host); ok {
		return l.user, l.password, true, nil
	}
	// One GetAuthorizationToken per host however many pushes want it; it runs on its own
	// deadline, so that a caller that gives up does not fail the others.
	ch := e.flights.DoChan(host, func() (any, error) {
		if l, ok := e.cached(host); ok { // fetched while this caller was on its way
			return l, nil
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.cfg.FetchTimeout)
		defer cancel()
		l, err := e.fetch(fctx, region)
		if err != nil {
			return nil, err
		}
		e.mu.Lock()
		e.logins[host] = l
		e.mu.Unlock()
		e.logger.InfoContext(ctx, "got an ECR token", "host", host, "expires", l.expires)
		return l, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", "", false, fmt.Errorf("getting an ECR token for %s: %w", host, res.Err)
		}
		l := res.Val.(ecrLogin)
		return l.user, l.password, true, nil
	case <-ctx.Done():
		return "", "", false, context.Cause(ctx)
	}
}

// cached is host's token unless it expires within Early.
func (e *ECR) cached(host string) (ecrLogin, bool) {
	now := e.cfg.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.logins[host]
	return l, ok && now.Before(l.expires.Add(-e.cfg.Early))
}

// fetch calls GetAuthorizationToken in region and decodes its token, base64 of "AWS:password".
func (e *ECR) fetch(ctx context.Context, region string) (ecrLogin, error) {
	out, err := e.tokens.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{}, inRegion(region))
	if err != nil {
		return ecrLogin{}, err
	}
	if len(out.AuthorizationData) == 0 || out.AuthorizationData[0].AuthorizationToken == nil {
		return ecrLogin{}, errors.New("GetAuthorizationToken returned no token")
	}
	data := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(data.AuthorizationToken))
	if err != nil {
		return ecrLogin{}, errors.New("GetAuthorizationToken returned a token that is not base64")
	}
	user, password, ok := strings.Cut(string(raw), ":")
	if !ok || user == "" || password == "" {
		return ecrLogin{}, errors.New("GetAuthorizationToken returned a token that is not user:password")
	}
	// ECR's tokens last 12 hours; it always says when one expires.
	expires := e.cfg.Now().Add(12 * time.Hour)
	if data.ExpiresAt != nil {
		expires = *data.ExpiresAt
	}
	return ecrLogin{user: user, password: password, expires: expires}, nil
}

// inRegion points one call at region; the client's endpoint override, if any, still applies.
func inRegion(region string) func(*ecr.Options) {
	return func(o *ecr.Options) {
		if region != "" {
			o.Region = region
		}
	}
}

// Invalidate implements Invalidator: host's token is forgotten if it is still password, and the
// next Lookup fetches a new one. It reports false for hosts that are not ECR's.
func (e *ECR) Invalidate(host, password string) bool {
	if _, _, ok := e.registry(host); !ok {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if l, ok := e.logins[host]; ok && l.password == password {
		delete(e.logins, host)
	}
	return true
}

// PreparePush implements Preparer: with CreateRepositories, an ECR repository that does not
// exist yet is created, with the configured tag mutability and scanning. Once a repository is
// known to exist it is not asked for again.
func (e *ECR) PreparePush(ctx context.Context, host, repository string) error {
	account, region, ok := e.registry(host)
	if !ok || !e.cfg.CreateRepositories {
		return nil
	}
	key := host + "/" + repository
	e.mu.Lock()
	known := e.exists[key]
	e.mu.Unlock()
	if known {
		return nil
	}
	in := &ecr.CreateRepositoryInput{
		RepositoryName:             aws.String(repository),
		ImageTagMutability:         ecrtypes.ImageTagMutabilityMutable,
		ImageScanningConfiguration: &ecrtypes.ImageScanningConfiguration{ScanOnPush: e.cfg.ScanOnPush},
	}
	if e.cfg.TagImmutability {
		in.ImageTagMutability = ecrtypes.ImageTagMutabilityImmutable
	}
	if account != "" {
		in.RegistryId = aws.String(account)
	}
	_, err := e.repos.CreateRepository(ctx, in, inRegion(region))
	if _, exists := errors.AsType[*ecrtypes.RepositoryAlreadyExistsException](err); err != nil && !exists {
		return fmt.Errorf("creating ECR repository %s on %s: %w", repository, host, err)
	} else if err == nil {
		e.logger.InfoContext(ctx, "created ECR repository", "host", host, "repository", repository,
			"tag_mutability", in.ImageTagMutability, "scan_on_push", e.cfg.ScanOnPush)
	}
	e.mu.Lock()
	e.exists[key] = true
	e.mu.Unlock()
	return nil
}
