package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/deploy"
)

const deploymentColumns = `id, run_id, repo, service, environment, platform, spec, commit_sha, status, error,
	image_ref, image_digest, replaced_id, superseded_by, attempt, max_attempts, cancel_requested, cancelled_by, cancel_reason,
	target_touched, created_at, claimed_at, building_at, pushing_at, deploying_at, finished_at,
	task_definition_arn, previous_task_definition_arn`

// deploymentFields are the scan destinations of deploymentColumns, in order.
func deploymentFields(d *deploy.Deployment) []any {
	return []any{&d.ID, &d.RunID, &d.Repo, &d.Service, &d.Environment, &d.Platform, &d.Spec, &d.CommitSHA,
		&d.Status, &d.Error, &d.ImageRef, &d.ImageDigest, &d.ReplacedID, &d.SupersededBy, &d.Attempt,
		&d.MaxAttempts, &d.CancelRequested, &d.CancelledBy, &d.CancelReason, &d.TargetTouched,
		&d.CreatedAt, &d.ClaimedAt, &d.BuildingAt, &d.PushingAt, &d.DeployingAt, &d.FinishedAt,
		&d.Result.TaskDefinitionARN, &d.Result.PreviousTaskDefinitionARN}
}

func scanDeployment(row pgx.CollectableRow) (deploy.Deployment, error) {
	var d deploy.Deployment
	err := row.Scan(deploymentFields(&d)...)
	return d, err
}

// deploymentInsert queues one deployment, idempotently per run, service and environment. A
// deployment whose image is already known (a rollback) is inserted with it.
const deploymentInsert = `
INSERT INTO deployments (run_id, repo, service, environment, platform, spec, commit_sha, image_ref, image_digest,
	target_key)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10)
ON CONFLICT (run_id, service, environment) DO NOTHING
RETURNING id`

// deploymentOvertaken is latest-wins for a push planned late: when a later push already has a
// deployment of the same service+environment (queued, running or done), the new one never runs.
const deploymentOvertaken = `
UPDATE deployments d SET status = 'superseded', superseded_by = n.id, finished_at = now(), updated_at = now(),
	error = 'superseded by deployment ' || n.id || ' of a later push'
FROM (
	SELECT id FROM deployments
	WHERE repo = $1 AND service = $2 AND environment = $3 AND run_id > $4
	  AND status NOT IN ('superseded', 'cancelled')
	ORDER BY run_id DESC LIMIT 1
) n
WHERE d.id = $5
RETURNING n.id`

// deploymentSupersede is latest-wins: deployments of earlier pushes to the same service+environment
// still waiting in the queue will never run. A running one is left alone (the new one waits for
// it), and so is one whose target was touched (it must put the target back first).
const deploymentSupersede = `
UPDATE deployments SET status = 'superseded', superseded_by = $4::bigint, finished_at = now(), updated_at = now(),
	error = 'superseded by deployment ' || $4::bigint || ' of a later push'
WHERE repo = $1 AND service = $2 AND environment = $3 AND status = 'queued' AND run_id < $5
  AND NOT target_touched`

// runHeld locks the run a planner holds, or finds nothing when its claim was lost.
const runHeld = `
SELECT id FROM runs WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'planning' FOR UPDATE`

// DeploymentsPlan records what planning a run decided, in one transaction under the planner's
// claim on the run: the deployments to queue (superseding older queued deployments of the same
// service+environment, or superseded at once by a later push's) and the refused ones, failed with
// their Error. It wakes the workers. Deployments already created for the same run, service and
// environment are not created again; ids holds only the new queued ones. A planner that lost its
// claim gets ErrNotHeld and nothing is written.
func (s *Store) DeploymentsPlan(ctx context.Context, c Claim, queue, refused []deploy.NewDeployment) (ids []int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, runHeld, c.ID, c.Owner, c.Attempt).Scan(new(int64)); err != nil {
			if err == pgx.ErrNoRows {
				return ErrNotHeld
			}
			return err
		}
		if err := refuseTx(ctx, tx, refused); err != nil {
			return err
		}
		ids, err = enqueueTx(ctx, tx, queue)
		return err
	})
	if errors.Is(err, ErrNotHeld) {
		return nil, err
	}
	if err != nil {
		return nil, interpret(err, "queueing deployments")
	}
	return ids, nil
}

// DeploymentsEnqueue queues deployments outside any planner's claim (tests, manual triggers), as
// DeploymentsPlan does.
func (s *Store) DeploymentsEnqueue(ctx context.Context, ds []deploy.NewDeployment) (ids []int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ids, err = enqueueTx(ctx, tx, ds)
		return err
	})
	return ids, interpret(err, "queueing deployments")
}

func enqueueTx(ctx context.Context, tx pgx.Tx, ds []deploy.NewDeployment) (ids []int64, err error) {
	for _, d := range ds {
		// Serializes enqueuers of one service+environment, so two concurrent pushes cannot both
		// miss each other's deployment.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			d.Repo+"\n"+d.Service+"\n"+d.Environment); err != nil {
			return nil, err
		}
		var id int64
		err := tx.QueryRow(ctx, deploymentInsert, d.RunID, d.Repo, d.Service, d.Environment, d.Platform,
			d.Spec, d.CommitSHA, d.ImageRef, d.ImageDigest, d.Spec.Destination.Ref()).Scan(&id)
		if err == pgx.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, err
		}
		var newer int64
		err = tx.QueryRow(ctx, deploymentOvertaken, d.Repo, d.Service, d.Environment, d.RunID, id).Scan(&newer)
		if err == nil {
			continue
		}
		if err != pgx.ErrNoRows {
			return nil, err
		}
		if _, err := tx.Exec(ctx, deploymentSupersede, d.Repo, d.Service, d.Environment, id, d.RunID); err != nil {
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

// refuseTx records deployments that planning refused (a target outside the repository's policy)
// as failed with their Error, so the history shows them.
func refuseTx(ctx context.Context, tx pgx.Tx, ds []deploy.NewDeployment) error {
	for _, d := range ds {
		_, err := tx.Exec(ctx, `
			INSERT INTO deployments (run_id, repo, service, environment, platform, spec, commit_sha,
				status, error, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, 'failed', $8, now())
			ON CONFLICT (run_id, service, environment) DO NOTHING`,
			d.RunID, d.Repo, d.Service, d.Environment, d.Platform, d.Spec, d.CommitSHA, d.Error)
		if err != nil {
			return err
		}
	}
	return nil
}

// RedeployEnqueue records a rollback or a redeploy as a run of its own (of run.Trigger, already
// planned: there is nothing to read or build) with one deployment whose image is known, in one
// transaction.
func (s *Store) RedeployEnqueue(ctx context.Context, run deploy.Run, d deploy.NewDeployment) (runID, deploymentID int64, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO runs (trigger, repo, ref, branch, after_sha, pusher, message, status, attempt, finished_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'planned', 1, now()) RETURNING id`,
			run.Trigger, run.Repo, run.Ref, run.Branch, run.AfterSHA, run.Pusher, run.Message).Scan(&runID)
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
	return runID, deploymentID, interpret(err, "queueing "+run.Trigger)
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

// DeploymentStage moves a claimed deployment to an active stage and stamps the stage's time; the
// deploying stage also marks the target touched. It returns ErrNotHeld when the claim was lost.
func (s *Store) DeploymentStage(ctx context.Context, c Claim, status deploy.Status) error {
	if !status.Active() {
		return fmt.Errorf("%q is not an active stage", status)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE deployments SET status = $4, updated_at = now(),
			building_at = CASE WHEN $4 = 'building' THEN now() ELSE building_at END,
			pushing_at = CASE WHEN $4 = 'pushing' THEN now() ELSE pushing_at END,
			deploying_at = CASE WHEN $4 = 'deploying' THEN now() ELSE deploying_at END,
			target_touched = target_touched OR $4 = 'deploying'
		WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status IN ('building', 'pushing', 'deploying')`,
		c.ID, c.Owner, c.Attempt, string(status))
	if err != nil {
		return interpret(err, "recording deployment stage")
	}
	if tag.RowsAffected() == 0 {
		return ErrNotHeld
	}
	return nil
}

// DeploymentImage records, under the worker's claim, the image a deployment built or reused and
// the deployment it replaces. It returns ErrNotHeld when the claim was lost.
func (s *Store) DeploymentImage(ctx context.Context, c Claim, ref, digest string, replaced *int64) error {
	tag, err := s.pool.Exec(ctx, `UPDATE deployments SET image_ref = $4, image_digest = $5, replaced_id = $6,
		updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status IN ('building', 'pushing', 'deploying')`,
		c.ID, c.Owner, c.Attempt, ref, digest, replaced)
	if err != nil {
		return interpret(err, "recording deployment image")
	}
	if tag.RowsAffected() == 0 {
		return ErrNotHeld
	}
	return nil
}

// DeploymentResult records, under the worker's claim, what the deployment's rollout puts on its
// platform. It returns ErrNotHeld when the claim was lost.
func (s *Store) DeploymentResult(ctx context.Context, c Claim, res deploy.Result) error {
	tag, err := s.pool.Exec(ctx, `UPDATE deployments SET task_definition_arn = $4,
		previous_task_definition_arn = $5, updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status IN ('building', 'pushing', 'deploying')`,
		c.ID, c.Owner, c.Attempt, res.TaskDefinitionARN, res.PreviousTaskDefinitionARN)
	if err != nil {
		return interpret(err, "recording deployment result")
	}
	if tag.RowsAffected() == 0 {
		return ErrNotHeld
	}
	return nil
}

// DeploymentOvertakenBy returns the newest deployment of a later push to d's service+environment
// that is not superseded or cancelled; ok is false when there is none.
func (s *Store) DeploymentOvertakenBy(ctx context.Context, d deploy.Deployment) (id int64, ok bool, err error) {
	err = s.pool.QueryRow(ctx, `SELECT id FROM deployments
		WHERE repo = $1 AND service = $2 AND environment = $3 AND run_id > $4
		  AND status NOT IN ('superseded', 'cancelled')
		ORDER BY run_id DESC LIMIT 1`, d.Repo, d.Service, d.Environment, d.RunID).Scan(&id)
	if err == pgx.ErrNoRows {
		return 0, false, nil
	}
	return id, err == nil, interpret(err, "reading later deployments")
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
		  AND ($4 = '' OR status = $4) AND ($5::bigint = 0 OR id < $5::bigint)
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
