// Package deploy holds Slipway's domain: runs (one per push), deployments (one per service and
// environment of a run), their statuses, and the error codes the HTTP layer maps to status codes.
package deploy

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Status is the state of a deployment or a run. The zero value is not a valid status.
type Status string

// Deployment statuses: queued → building → pushing → deploying → one of the final ones.
const (
	StatusQueued     Status = "queued"
	StatusBuilding   Status = "building"
	StatusPushing    Status = "pushing"
	StatusDeploying  Status = "deploying"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusCancelled  Status = "cancelled"
	StatusSuperseded Status = "superseded"
	StatusRolledBack Status = "rolled_back"
)

// Run statuses beyond the shared ones: planning a run reads its pipeline file and creates its
// deployments; skipped means the push matched no service.
const (
	StatusPlanning Status = "planning"
	StatusPlanned  Status = "planned"
	StatusSkipped  Status = "skipped"
)

// DeploymentStatuses are every status a deployment can have, in the order it can pass them.
var DeploymentStatuses = []Status{StatusQueued, StatusBuilding, StatusPushing, StatusDeploying,
	StatusSucceeded, StatusFailed, StatusCancelled, StatusSuperseded, StatusRolledBack}

// ActiveDeployment are the statuses of a claimed deployment: it holds its target and a lease.
// The queue's SQL spells them out (store/queue_sql.go); a test there keeps the two in step.
var ActiveDeployment = []Status{StatusBuilding, StatusPushing, StatusDeploying}

// Final reports whether no further transition can happen.
func (s Status) Final() bool {
	switch s {
	case StatusSucceeded, StatusFailed, StatusCancelled, StatusSuperseded, StatusRolledBack,
		StatusPlanned, StatusSkipped:
		return true
	}
	return false
}

// Active reports whether a deployment in this status holds its service+environment.
func (s Status) Active() bool { return slices.Contains(ActiveDeployment, s) }

// Run is one push (or manual trigger) of a repository.
type Run struct {
	ID         int64  `json:"id"`
	DeliveryID string `json:"delivery_id,omitempty"`
	Trigger    string `json:"trigger"`
	Repo       string `json:"repo"`
	Ref        string `json:"ref"`
	Branch     string `json:"branch"`
	BeforeSHA  string `json:"before_sha"`
	AfterSHA   string `json:"after_sha"`
	CloneURL   string `json:"clone_url,omitempty"`
	Pusher     string `json:"pusher"`
	Message    string `json:"message"`
	Status     Status `json:"status"`
	Error      string `json:"error,omitempty"`
	// Reason says why a skipped run deployed nothing: not an error.
	Reason  string `json:"reason,omitempty"`
	Attempt int    `json:"attempt"`
	// CancelledBy and CancelReason say who asked for a cancel, and why.
	CancelledBy  string     `json:"cancelled_by,omitempty"`
	CancelReason string     `json:"cancel_reason,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	FinishedAt   *time.Time `json:"finished_at,omitempty"`
	// Skipped are the services (and environments) of the pipeline file this run left alone.
	Skipped     []Skip       `json:"skipped,omitempty"`
	Deployments []Deployment `json:"deployments,omitempty"`
}

// Skip is a service, or one environment of it, that a push does not deploy, and why.
type Skip struct {
	Service     string `json:"service"`
	Environment string `json:"environment,omitempty"` // "" for every environment of the service
	Reason      string `json:"reason"`
}

// Deployment is one service rolled out to one environment.
type Deployment struct {
	ID          int64  `json:"id"`
	RunID       int64  `json:"run_id"`
	Repo        string `json:"repo"`
	Service     string `json:"service"`
	Environment string `json:"environment"`
	Platform    string `json:"platform"`
	Spec        Spec   `json:"spec"`
	CommitSHA   string `json:"commit_sha"`
	Status      Status `json:"status"`
	Error       string `json:"error,omitempty"`
	ImageRef    string `json:"image_ref,omitempty"`
	ImageDigest string `json:"image_digest,omitempty"`
	// Result is what the rollout put on the platform (an ECS task definition), once it is known.
	Result       Result `json:"result,omitzero"`
	ReplacedID   *int64 `json:"replaced_id,omitempty"`
	SupersededBy *int64 `json:"superseded_by,omitempty"`
	Attempt      int    `json:"attempt"`
	MaxAttempts  int    `json:"max_attempts"`
	// CancelRequested is set once someone asked for the deployment to stop.
	CancelRequested bool   `json:"cancel_requested,omitempty"`
	CancelledBy     string `json:"cancelled_by,omitempty"`
	CancelReason    string `json:"cancel_reason,omitempty"`
	// TargetTouched is set once a worker started changing the target: until the deployment is
	// final, the target may be in any state, and whoever claims it next puts it back first.
	TargetTouched bool       `json:"target_touched,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	ClaimedAt     *time.Time `json:"claimed_at,omitempty"`
	BuildingAt    *time.Time `json:"building_at,omitempty"`
	PushingAt     *time.Time `json:"pushing_at,omitempty"`
	DeployingAt   *time.Time `json:"deploying_at,omitempty"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
}

// NewDeployment is what planning a run asks the store to enqueue.
type NewDeployment struct {
	RunID       int64
	Repo        string
	Service     string
	Environment string
	Platform    string
	Spec        Spec
	CommitSHA   string
	// ImageRef and ImageDigest are set when the image is known before any build (a rollback).
	ImageRef    string
	ImageDigest string
	// Error is why planning refused the deployment; it is recorded as failed with it.
	Error string
}

// Error codes, mapped to HTTP status codes in exactly one place (internal/web).
const (
	ENOTFOUND = "not_found"
	EINVALID  = "invalid"
	ECONFLICT = "conflict"
	// EFORBIDDEN: the server's policy does not allow it, whoever asks.
	EFORBIDDEN = "forbidden"
	EINTERNAL  = "internal"
)

// Error is a domain error with a code the caller can act on.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Errorf builds an *Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EINTERNAL when it carries none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}
