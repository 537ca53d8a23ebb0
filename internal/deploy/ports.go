package deploy

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// LogFunc receives one line of a stage's output as it happens; stream is "build", "push",
// "deploy" or "system". Implementations must be safe for concurrent use.
type LogFunc func(stream, line string)

// BuildRequest is one image build from a checked-out commit.
type BuildRequest struct {
	Dir        string            // root of the checkout
	Context    string            // build context, relative to Dir
	Dockerfile string            // relative to Dir
	BuildArgs  map[string]string // --build-arg
	Stage      string            // --target stage, "" for the last
	Tags       []string          // full references, image:tag, all given to the one build
	Labels     map[string]string
}

// Builder builds images on a container engine.
type Builder interface {
	// Build runs the build, streaming its output to log line by line; cancelling ctx stops it.
	Build(ctx context.Context, req BuildRequest, log LogFunc) error
}

// Registry is an OCI registry reached with the server's credentials (configured, or an ECR token).
type Registry interface {
	// Digest returns the manifest digest of ref (image:tag) when the registry holds it.
	Digest(ctx context.Context, ref string) (digest string, ok bool, err error)
	// Push pushes ref, built locally, and returns the digest the registry recorded for it.
	Push(ctx context.Context, ref string, log LogFunc) (digest string, err error)
	// Tag makes ref (image:tag) point to digest, a manifest the image's repository holds.
	Tag(ctx context.Context, ref, digest string) error
}

// Rollout asks a target to run an image.
type Rollout struct {
	DeploymentID int64
	Repo         string
	Service      string
	Environment  string
	// Image is pinned by digest: repository@sha256:…, never a mutable tag.
	Image string
	// Previous is the image the last successful deployment put there, "" if none is known.
	Previous string
	// PreviousID is the deployment that put Previous live (0 if none): what the database records
	// as live, which is what a target restores on failure, never a guess from what it finds.
	PreviousID int64
	// PreviousDestination is that deployment's destination, to run Previous again exactly as it ran.
	PreviousDestination Destination
	Destination         Destination
	// Adopt lets the rollout take over a target that Slipway did not create (no LabelRepo on it):
	// the server's policy adopts it explicitly. A target another repository owns is never taken.
	Adopt bool
	// Held reports whether the worker still holds its claim on the deployment. A target calls it
	// before every change it makes (create, stop, start, rename, remove, update) and stops when it
	// fails: a worker that lost its lease must leave the target to the new owner. nil means held.
	Held func() error
	// Record stores what the rollout puts on the target (the deployment's Result) under the
	// worker's claim; a target calls it before it points the target there and stops when it fails.
	// nil records nothing.
	Record func(ctx context.Context, res Result) error
	// Waiting tells the worker the rollout only waits now (a container proving itself, Swarm or
	// ECS settling), so its slot may take other work; the rollout calls resume when it acts
	// again. nil: the slot stays taken.
	Waiting func() (resume func())
}

// Wait calls r.Waiting, if set, and returns its resume.
func (r Rollout) Wait() (resume func()) {
	if r.Waiting == nil {
		return func() {}
	}
	return r.Waiting()
}

// LabelRepo is the label (on containers and Swarm services; a tag on ECS services) recording
// which repository owns a target: the one whose deployment created or adopted it.
const LabelRepo = "dev.slipway.repo"

// CheckOwner says whether r may change a target whose LabelRepo is owner ("" when the target has
// none: Slipway did not create it). what names the target in the error.
func (r Rollout) CheckOwner(what, owner string) error {
	switch {
	case owner == "" && !r.Adopt:
		return fmt.Errorf("%s was not created by Slipway: refusing to take it over (list it in policy.adopt to let Slipway adopt it)", what)
	case owner != "" && !strings.EqualFold(owner, r.Repo):
		return fmt.Errorf("%s belongs to repository %s, not %s: refusing to take it over", what, owner, r.Repo)
	}
	return nil
}

// CheckHeld calls r.Held, if set.
func (r Rollout) CheckHeld() error {
	if r.Held == nil {
		return nil
	}
	return r.Held()
}

// Target rolls images out to one kind of place (a local container, a Swarm service, an ECS service).
type Target interface {
	// Deploy makes Image live and waits until it is running (and healthy, where the target can
	// tell). If the new version fails and the target restores the previous one, the error wraps
	// ErrRolledBack.
	Deploy(ctx context.Context, r Rollout, log LogFunc) error
	// Rollback makes r.Image live again without a build: one click back to a known-good image.
	Rollback(ctx context.Context, r Rollout, log LogFunc) error
	// Restore makes the target run r.Previous again, as deployment r.PreviousID left it, after an
	// attempt of deployment r.DeploymentID was interrupted while changing it (r.Image is unset).
	// It starts from whatever it finds, removes what the interrupted attempt left, and is a no-op
	// when the live version runs already. With no live version it only removes what was left.
	Restore(ctx context.Context, r Rollout, log LogFunc) error
}

// ErrRolledBack marks a rollout that failed and was reverted to the previous version.
var ErrRolledBack = errors.New("rolled back to the previous version")

// RolloutError words the failure of a target's Deploy or Rollback of image. restored says the
// target put back what ran before. Only a failed deploy that restored wraps ErrRolledBack: after a
// failed rollback, what runs again is the version being rolled back from, not a previous one.
func RolloutError(rollback bool, image string, restored bool, err error) error {
	switch {
	case err == nil:
		return nil
	case rollback && restored:
		return fmt.Errorf("rolling back to %s: %w (what ran before is running again)", image, err)
	case rollback:
		return fmt.Errorf("rolling back to %s: %w", image, err)
	case restored:
		return fmt.Errorf("deploying %s: %w: %w", image, err, ErrRolledBack)
	}
	return fmt.Errorf("deploying %s: %w", image, err)
}
