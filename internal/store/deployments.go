package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/deploy"
)

const deploymentColumns = `id, run_id, repo, service, environment, target_kind, target, commit_sha, status, error,
	image_ref, image_digest, replaced_id, superseded_by, attempt, created_at, claimed_at, building_at,
	pushing_at, deploying_at, finished_at`

// deploymentFields are the scan destinations of deploymentColumns, in order.
func deploymentFields(d *deploy.Deployment) []any {
	return []any{&d.ID, &d.RunID, &d.Repo, &d.Service, &d.Environment, &d.TargetKind, &d.Target, &d.CommitSHA,
		&d.Status, &d.Error, &d.ImageRef, &d.ImageDigest, &d.ReplacedID, &d.SupersededBy, &d.Attempt,
		&d.CreatedAt, &d.ClaimedAt, &d.BuildingAt, &d.PushingAt, &d.DeployingAt, &d.FinishedAt}
}

func scanDeployment(row pgx.CollectableRow) (deploy.Deployment, error) {
	var d deploy.Deployment
	err := row.Scan(deploymentFields(&d)...)
	return d, err
}

// deploymentInsert queues one deployment, idempotently per run, service and environment.
const deploymentInsert = `
INSERT INTO deployments (run_id, repo, service, environment, target_kind, target, commit_sha)
VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'), $7)
ON CONFLICT (run_id, service, environment) DO NOTHING
RETURNING id`

// deploymentSupersede is latest-wins: older deployments of the same service+environment still
// waiting in the queue will never run. A running one is left alone; the new one waits for it.
const deploymentSupersede = `
UPDATE deployments SET status = 'superseded', superseded_by = $4, finished_at = now(), updated_at = now(),
	error = 'superseded by deployment ' || $4
WHERE repo = $1 AND service = $2 AND environment = $3 AND status = 'queued' AND id < $4`

// DeploymentsEnqueue queues deployments in one transaction, superseding older queued deployments of
// the same service+environment, and wakes the workers. Deployments already created for the same
// run, service and environment are not created again; ids holds only the new ones.
func (s *Store) DeploymentsEnqueue(ctx context.Context, ds []deploy.NewDeployment) (ids []int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ids, err = enqueueTx(ctx, tx, ds)
		return err
	})
	if err != nil {
		return nil, interpret(err, "queueing deployments")
	}
	return ids, nil
}

func enqueueTx(ctx context.Context, tx pgx.Tx, ds []deploy.NewDeployment) (ids []int64, err error) {
	for _, d := range ds {
		// Serializes enqueuers of one service+environment, so two concurrent pushes cannot both
		// miss each other's queued deployment.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			d.Repo+"\n"+d.Service+"\n"+d.Environment); err != nil {
			return nil, err
		}
		var target any
		if len(d.Target) > 0 {
			target = string(d.Target)
		}
		var id int64
		err := tx.QueryRow(ctx, deploymentInsert, d.RunID, d.Repo, d.Service, d.Environment, d.TargetKind, target, d.CommitSHA).Scan(&id)
		if err == pgx.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, deploymentSupersede, d.Repo, d.Service, d.Environment, id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if len(ids) > 0 {
		if _, err := tx.Exec(ctx, `SELECT pg_notify('`+ChannelWork+`', 'deployment')`); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// RollbackEnqueue records a rollback as a run of its own (trigger "rollback", already planned:
// there is nothing to read or build) with one deployment whose spec is given, in one transaction.
func (s *Store) RollbackEnqueue(ctx context.Context, run deploy.Run, d deploy.NewDeployment) (runID, deploymentID int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO runs (trigger, repo, ref, branch, after_sha, pusher, message, status, attempt, finished_at)
			VALUES ('rollback', $1, $2, $3, $4, $5, $6, 'planned', 1, now()) RETURNING id`,
			run.Repo, run.Ref, run.Branch, run.AfterSHA, run.Pusher, run.Message).Scan(&runID)
		if err != nil {
			return err
		}
		d.RunID = runID
		ids, err := enqueueTx(ctx, tx, []deploy.NewDeployment{d})
		if err != nil {
			return err
		}
		deploymentID = ids[0]
		return nil
	})
	return runID, deploymentID, interpret(err, "queueing rollback")
}

// DeploymentGet returns one deployment.
func (s *Store) DeploymentGet(ctx context.Context, id int64) (deploy.Deployment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = $1`, id)
	if err != nil {
		return deploy.Deployment{}, interpret(err, "reading deployment")
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeployment)
	return d, interpret(err, fmt.Sprintf("deployment %d", id))
}

// DeploymentsByRun returns the deployments of a run in id order.
func (s *Store) DeploymentsByRun(ctx context.Context, runID int64) ([]deploy.Deployment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE run_id = $1 ORDER BY id`, runID)
	if err != nil {
		return nil, interpret(err, "listing deployments")
	}
	ds, err := pgx.CollectRows(rows, scanDeployment)
	return ds, interpret(err, "listing deployments")
}

// stageColumn names the timestamp column each stage sets.
var stageColumn = map[deploy.Status]string{
	deploy.StatusBuilding:  "building_at",
	deploy.StatusPushing:   "pushing_at",
	deploy.StatusDeploying: "deploying_at",
}

// DeploymentStage moves a deployment owner holds to the next active stage and stamps its time.
// It fails with ECONFLICT when owner no longer holds the lease.
func (s *Store) DeploymentStage(ctx context.Context, id int64, owner string, status deploy.Status) error {
	col, ok := stageColumn[status]
	if !ok {
		return fmt.Errorf("%q is not an active stage", status)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE deployments SET status = $3, `+col+` = now(), updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND status IN ('building', 'pushing', 'deploying')`, id, owner, status)
	if err != nil {
		return interpret(err, "recording deployment stage")
	}
	if tag.RowsAffected() == 0 {
		return deploy.Errorf(deploy.ECONFLICT, "deployment %d is no longer held by %s", id, owner)
	}
	return nil
}

// DeploymentImage records the image a deployment built or reused, and the deployment it replaces.
func (s *Store) DeploymentImage(ctx context.Context, id int64, ref, digest string, replaced *int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE deployments SET image_ref = $2, image_digest = $3, replaced_id = $4,
		updated_at = now() WHERE id = $1`, id, ref, digest, replaced)
	return interpret(err, "recording deployment image")
}

// DeploymentLive returns the last deployment of repo's service to environment that succeeded:
// what is live there now, as far as Slipway knows. ok is false when there is none.
func (s *Store) DeploymentLive(ctx context.Context, repo, service, environment string) (deploy.Deployment, bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE repo = $1 AND service = $2 AND environment = $3 AND status = 'succeeded'
		ORDER BY finished_at DESC, id DESC LIMIT 1`, repo, service, environment)
	if err != nil {
		return deploy.Deployment{}, false, interpret(err, "reading live deployment")
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeployment)
	if err == pgx.ErrNoRows {
		return deploy.Deployment{}, false, nil
	}
	return d, err == nil, interpret(err, "reading live deployment")
}

// DeploymentsRecordRefused records deployments that planning refused (a target outside the
// repository's policy) as failed with the reason, so the history shows them.
func (s *Store) DeploymentsRecordRefused(ctx context.Context, ds []deploy.NewDeployment, reasons []string) error {
	for i, d := range ds {
		var target any
		if len(d.Target) > 0 {
			target = string(d.Target)
		}
		_, err := s.pool.Exec(ctx, `
			INSERT INTO deployments (run_id, repo, service, environment, target_kind, target, commit_sha,
				status, error, finished_at)
			VALUES ($1, $2, $3, $4, $5, coalesce($6::jsonb, '{}'), $7, 'failed', $8, now())
			ON CONFLICT (run_id, service, environment) DO NOTHING`,
			d.RunID, d.Repo, d.Service, d.Environment, d.TargetKind, target, d.CommitSHA, reasons[i])
		if err != nil {
			return interpret(err, "recording refused deployment")
		}
	}
	return nil
}

// DeploymentFilter selects deployments for the history; empty fields match everything.
type DeploymentFilter struct {
	Repo, Service, Environment, Status string
	Before                             int64 // cursor: only ids below it
	Limit                              int
}

// DeploymentsList returns deployments newest first.
func (s *Store) DeploymentsList(ctx context.Context, f DeploymentFilter) ([]deploy.Deployment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE ($1 = '' OR repo = $1) AND ($2 = '' OR service = $2) AND ($3 = '' OR environment = $3)
		  AND ($4 = '' OR status = $4) AND ($5 = 0 OR id < $5)
		ORDER BY id DESC LIMIT $6`, f.Repo, f.Service, f.Environment, f.Status, f.Before, f.Limit)
	if err != nil {
		return nil, interpret(err, "listing deployments")
	}
	ds, err := pgx.CollectRows(rows, scanDeployment)
	return ds, interpret(err, "listing deployments")
}

// Live is what runs in one service+environment: the last deployment that succeeded there, with
// who pushed it.
type Live struct {
	deploy.Deployment
	Trigger string `json:"trigger"`
	Pusher  string `json:"pusher"`
	Message string `json:"message"`
}

// DeploymentsLive returns, per repository, service and environment, what is live now.
func (s *Store) DeploymentsLive(ctx context.Context, repo string) ([]Live, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT DISTINCT ON (d.repo, d.service, d.environment) `+prefixed("d.", deploymentColumns)+`,
			r.trigger, r.pusher, r.message
		FROM deployments d JOIN runs r ON r.id = d.run_id
		WHERE d.status = 'succeeded' AND ($1 = '' OR d.repo = $1)
		ORDER BY d.repo, d.service, d.environment, d.finished_at DESC, d.id DESC`, repo)
	if err != nil {
		return nil, interpret(err, "listing live deployments")
	}
	live, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Live, error) {
		var l Live
		err := row.Scan(append(deploymentFields(&l.Deployment), &l.Trigger, &l.Pusher, &l.Message)...)
		return l, err
	})
	return live, interpret(err, "listing live deployments")
}

// prefixed qualifies each column of a comma-separated list with p.
func prefixed(p, columns string) string {
	parts := strings.Split(columns, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
