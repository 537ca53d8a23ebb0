// Package deploytest holds in-memory fakes of the deploy contracts (Builder, Registry, Target), to
// drive the unit tests of what calls them without Docker, a registry or AWS. Each method calls its
// Func field when set, and does the documented default otherwise; every call is recorded. The fakes
// are safe for concurrent use.
package deploytest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sync"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// DigestOf is the digest the fake Registry's Push reports for ref when PushFunc is nil.
func DigestOf(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Builder is a fake deploy.Builder. With BuildFunc nil, Build succeeds.
type Builder struct {
	BuildFunc func(ctx context.Context, req deploy.BuildRequest, log deploy.LogFunc) error

	mu       sync.Mutex
	requests []deploy.BuildRequest
}

var _ deploy.Builder = (*Builder)(nil)

// Build records req and calls BuildFunc.
func (b *Builder) Build(ctx context.Context, req deploy.BuildRequest, log deploy.LogFunc) error {
	b.mu.Lock()
	b.requests = append(b.requests, req)
	b.mu.Unlock()
	if b.BuildFunc == nil {
		return nil
	}
	return b.BuildFunc(ctx, req, log)
}

// Requests returns the requests Build was called with, in order.
func (b *Builder) Requests() []deploy.BuildRequest {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// Registry is a fake deploy.Registry. With DigestFunc nil, Digest reports that the registry does not
// hold the ref; with PushFunc nil, Push succeeds and reports DigestOf(ref); with TagFunc nil, Tag
// succeeds.
type Registry struct {
	DigestFunc func(ctx context.Context, ref string) (digest string, ok bool, err error)
	PushFunc   func(ctx context.Context, ref string, log deploy.LogFunc) (digest string, err error)
	TagFunc    func(ctx context.Context, ref, digest string) error

	mu      sync.Mutex
	lookups []string
	pushes  []string
	tags    []string
}

var _ deploy.Registry = (*Registry)(nil)

// Digest records ref and calls DigestFunc.
func (r *Registry) Digest(ctx context.Context, ref string) (string, bool, error) {
	r.mu.Lock()
	r.lookups = append(r.lookups, ref)
	r.mu.Unlock()
	if r.DigestFunc == nil {
		return "", false, nil
	}
	return r.DigestFunc(ctx, ref)
}

// Push records ref and calls PushFunc.
func (r *Registry) Push(ctx context.Context, ref string, log deploy.LogFunc) (string, error) {
	r.mu.Lock()
	r.pushes = append(r.pushes, ref)
	r.mu.Unlock()
	if r.PushFunc == nil {
		return DigestOf(ref), nil
	}
	return r.PushFunc(ctx, ref, log)
}

// Tag records "ref@digest" and calls TagFunc.
func (r *Registry) Tag(ctx context.Context, ref, digest string) error {
	r.mu.Lock()
	r.tags = append(r.tags, ref+"@"+digest)
	r.mu.Unlock()
	if r.TagFunc == nil {
		return nil
	}
	return r.TagFunc(ctx, ref, digest)
}

// Tags returns the "ref@digest" Tag was called with, in order.
func (r *Registry) Tags() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tags)
}

// Lookups returns the refs Digest was called with, in order.
func (r *Registry) Lookups() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lookups)
}

// Pushes returns the refs Push was called with, in order.
func (r *Registry) Pushes() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pushes)
}

// Target methods, as Call records them.
const (
	MethodDeploy   = "Deploy"
	MethodRollback = "Rollback"
	MethodRestore  = "Restore"
)

// Call is one call of a Target method.
type Call struct {
	Method  string
	Rollout deploy.Rollout
}

// Target is a fake deploy.Target. A method whose Func field is nil succeeds. It does not call
// Rollout.Held itself: a test that needs a target honouring the fence does so in its Func.
type Target struct {
	DeployFunc   func(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error
	RollbackFunc func(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error
	RestoreFunc  func(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error

	mu    sync.Mutex
	calls []Call
}

var _ deploy.Target = (*Target)(nil)

// Deploy records r and calls DeployFunc.
func (t *Target) Deploy(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	return t.call(ctx, MethodDeploy, t.DeployFunc, r, log)
}

// Rollback records r and calls RollbackFunc.
func (t *Target) Rollback(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	return t.call(ctx, MethodRollback, t.RollbackFunc, r, log)
}

// Restore records r and calls RestoreFunc.
func (t *Target) Restore(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) error {
	return t.call(ctx, MethodRestore, t.RestoreFunc, r, log)
}

func (t *Target) call(ctx context.Context, method string,
	fn func(context.Context, deploy.Rollout, deploy.LogFunc) error, r deploy.Rollout, log deploy.LogFunc) error {
	t.mu.Lock()
	t.calls = append(t.calls, Call{Method: method, Rollout: r})
	t.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(ctx, r, log)
}

// Calls returns the calls made so far, in order.
func (t *Target) Calls() []Call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.calls)
}

// Waits is a Rollout.Waiting that counts the waits a target announces and the resumes it calls.
type Waits struct {
	mu             sync.Mutex
	waits, resumes int
}

// Waiting counts a wait; the func it returns counts a resume.
func (w *Waits) Waiting() (resume func()) {
	w.mu.Lock()
	w.waits++
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		w.resumes++
		w.mu.Unlock()
	}
}

// Counts returns how many waits were announced and how many resumed.
func (w *Waits) Counts() (waits, resumes int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waits, w.resumes
}
