package flow_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/flow"
	"github.com/slipway-dev/slipway/internal/source"
	"github.com/slipway-dev/slipway/internal/store"
)

// fakeStore is an in-memory flow.Store with the semantics of *store.Store that the Executor relies
// on: writes under a claim land only while the claim is held, the deploying stage marks the target
// touched, the live deployment is the last one that succeeded, and a deployment is overtaken by the
// newest one of a later run that is not superseded or cancelled.
type fakeStore struct {
	mu          sync.Mutex
	runs        map[int64]deploy.Run
	deployments map[int64]deploy.Deployment
	// loseAt names the write ("stage building", "stage pushing", "stage deploying", "image") from
	// which the claim is lost: that write and every later one return store.ErrNotHeld.
	loseAt string
	lost   bool

	writes []string // "stage building", "image", … in order, refused ones included
	claims []store.Claim
	images []imageWrite
	lines  []store.LogLine
}

type imageWrite struct {
	Ref, Digest string
	Replaced    *int64
}

var _ flow.Store = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{runs: map[int64]deploy.Run{}, deployments: map[int64]deploy.Deployment{}}
}

func (s *fakeStore) putRun(r deploy.Run) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[r.ID] = r
}

func (s *fakeStore) putDeployment(d deploy.Deployment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deployments[d.ID] = d
}

// loseClaim makes every write from now on return store.ErrNotHeld, as when another worker took
// the deployment over.
func (s *fakeStore) loseClaim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lost = true
}

func (s *fakeStore) deployment(id int64) deploy.Deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deployments[id]
}

// stages returns the statuses DeploymentStage recorded, in order.
func (s *fakeStore) stages() []deploy.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []deploy.Status
	for _, w := range s.writes {
		if st, ok := strings.CutPrefix(w, "stage "); ok {
			out = append(out, deploy.Status(st))
		}
	}
	return out
}

// log returns the stored log lines joined by newlines.
func (s *fakeStore) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for _, l := range s.lines {
		fmt.Fprintf(&b, "%s: %s\n", l.Stream, l.Line)
	}
	return b.String()
}

func (s *fakeStore) RunGet(_ context.Context, id int64) (deploy.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return deploy.Run{}, deploy.Errorf(deploy.ENOTFOUND, "run %d not found", id)
	}
	return r, nil
}

func (s *fakeStore) RunSkipped(context.Context, store.Claim, []deploy.Skip) error { return nil }

func (s *fakeStore) DeploymentsPlan(context.Context, store.Claim, []deploy.NewDeployment, []deploy.NewDeployment) ([]int64, error) {
	return nil, errors.New("fakeStore: DeploymentsPlan is not used by the Executor")
}

func (s *fakeStore) DeploymentGet(_ context.Context, id int64) (deploy.Deployment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deployments[id]
	if !ok {
		return deploy.Deployment{}, deploy.Errorf(deploy.ENOTFOUND, "deployment %d not found", id)
	}
	return d, nil
}

// write records a write under c and reports whether the claim is still held; s.mu is held.
func (s *fakeStore) write(c store.Claim, what string) (deploy.Deployment, error) {
	s.writes = append(s.writes, what)
	s.claims = append(s.claims, c)
	if what == s.loseAt {
		s.lost = true
	}
	d, ok := s.deployments[c.ID]
	if s.lost || !ok || !d.Status.Active() {
		return d, store.ErrNotHeld
	}
	return d, nil
}

func (s *fakeStore) DeploymentStage(_ context.Context, c store.Claim, status deploy.Status) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !status.Active() {
		return fmt.Errorf("%q is not an active stage", status)
	}
	d, err := s.write(c, "stage "+string(status))
	if err != nil {
		return err
	}
	d.Status = status
	d.TargetTouched = d.TargetTouched || status == deploy.StatusDeploying
	s.deployments[d.ID] = d
	return nil
}

func (s *fakeStore) DeploymentImage(_ context.Context, c store.Claim, ref, digest string, replaced *int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.write(c, "image")
	if err != nil {
		return err
	}
	var r *int64
	if replaced != nil {
		id := *replaced
		r = &id
	}
	s.images = append(s.images, imageWrite{Ref: ref, Digest: digest, Replaced: r})
	d.ImageRef, d.ImageDigest, d.ReplacedID = ref, digest, r
	s.deployments[d.ID] = d
	return nil
}

func (s *fakeStore) DeploymentResult(_ context.Context, c store.Claim, res deploy.Result) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, err := s.write(c, "result")
	if err != nil {
		return err
	}
	d.Result = res
	s.deployments[d.ID] = d
	return nil
}

func (s *fakeStore) DeploymentLive(_ context.Context, repo, service, environment string) (deploy.Deployment, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var live deploy.Deployment
	for _, d := range s.deployments {
		if d.Repo == repo && d.Service == service && d.Environment == environment &&
			d.Status == deploy.StatusSucceeded && d.ID > live.ID {
			live = d
		}
	}
	return live, live.ID != 0, nil
}

func (s *fakeStore) DeploymentOvertakenBy(_ context.Context, d deploy.Deployment) (int64, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var newer deploy.Deployment
	for _, n := range s.deployments {
		if n.Repo == d.Repo && n.Service == d.Service && n.Environment == d.Environment && n.RunID > d.RunID &&
			n.Status != deploy.StatusSuperseded && n.Status != deploy.StatusCancelled && n.RunID > newer.RunID {
			newer = n
		}
	}
	return newer.ID, newer.ID != 0, nil
}

func (s *fakeStore) DeploymentLogsAppend(_ context.Context, c store.Claim, lines []store.LogLine) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost {
		return store.ErrNotHeld
	}
	s.lines = append(s.lines, lines...)
	return nil
}

// fakeSource is a flow.Source whose checkouts are temporary directories holding files (by
// default a Dockerfile at the root, so that pipeline.CheckBuild passes).
type fakeSource struct {
	t     *testing.T
	files map[string]string
	// CheckoutFunc, when set, replaces the checkout.
	CheckoutFunc func(ctx context.Context, repo source.Repo, sha string) (*source.Checkout, error)

	mu        sync.Mutex
	checkouts []checkoutCall
}

type checkoutCall struct {
	Repo source.Repo
	SHA  string
	Dir  string
}

var _ flow.Source = (*fakeSource)(nil)

func newFakeSource(t *testing.T) *fakeSource {
	return &fakeSource{t: t, files: map[string]string{"Dockerfile": "FROM scratch\n"}}
}

func (s *fakeSource) Checkout(ctx context.Context, repo source.Repo, sha string) (*source.Checkout, error) {
	if s.CheckoutFunc != nil {
		s.record(checkoutCall{Repo: repo, SHA: sha})
		return s.CheckoutFunc(ctx, repo, sha)
	}
	dir := s.t.TempDir()
	for p, content := range s.files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	s.record(checkoutCall{Repo: repo, SHA: sha, Dir: dir})
	// Close removes nothing (its root is unset): t.TempDir goes at the end of the test.
	return &source.Checkout{Dir: dir, SHA: sha}, nil
}

func (s *fakeSource) record(c checkoutCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkouts = append(s.checkouts, c)
}

func (s *fakeSource) calls() []checkoutCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.checkouts)
}

func (s *fakeSource) ReadFile(context.Context, source.Repo, string, string) ([]byte, error) {
	return nil, errors.New("fakeSource: ReadFile is not used by the Executor")
}

func (s *fakeSource) ChangedPaths(context.Context, source.Repo, string, string) ([]string, bool, error) {
	return nil, false, errors.New("fakeSource: ChangedPaths is not used by the Executor")
}
