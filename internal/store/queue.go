package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Notification channels. Work: a payload naming the kind that has new work. Cancel: "kind:id".
const (
	ChannelWork   = "slipway_work"
	ChannelCancel = "slipway_cancel"
)

// Queue kinds, one table each. Both tables carry the same queue columns.
const (
	KindRun        = "run"
	KindDeployment = "deployment"
)

// queueTable holds what differs between the two queue tables.
type queueTable struct {
	name    string
	claimed string // status a claim moves an item to
	active  string // SQL list of statuses that hold a lease
}

var queueTables = map[string]queueTable{
	KindRun:        {name: "runs", claimed: "planning", active: "('planning')"},
	KindDeployment: {name: "deployments", claimed: "building", active: "('building', 'pushing', 'deploying')"},
}

func tableFor(kind string) (queueTable, error) {
	t, ok := queueTables[kind]
	if !ok {
		return queueTable{}, fmt.Errorf("unknown queue kind %q", kind)
	}
	return t, nil
}

// Claimed is an item a worker now holds.
type Claimed struct {
	Kind    string
	ID      int64
	Attempt int
	// Waited is how long the item was claimable before this claim.
	Waited time.Duration
}

// claimSQL takes the oldest claimable item. For deployments, an item whose service+environment
// already has an active deployment is passed over; the unique index deployments_one_active is what
// guarantees it, this filter only keeps workers from tripping over it.
func claimSQL(t queueTable) string {
	extra, stage := "", ""
	if t.name == "deployments" {
		// A deployment put back in the queue (retry, rescue, release) after a newer push of the
		// same service+environment must never run: it would roll the older code out over the newer.
		// deploymentsSupersedeStale marks it superseded; until then it is passed over.
		extra = `AND NOT EXISTS (SELECT 1 FROM deployments a
			WHERE a.repo = q.repo AND a.service = q.service AND a.environment = q.environment
			  AND a.status IN ` + t.active + `)
		AND NOT EXISTS (SELECT 1 FROM deployments n
			WHERE n.repo = q.repo AND n.service = q.service AND n.environment = q.environment
			  AND n.id > q.id AND n.status NOT IN ('superseded', 'cancelled'))`
		stage = ", building_at = now()"
	}
	return `
WITH c AS (
	SELECT id FROM ` + t.name + ` q
	WHERE status = 'queued' AND run_after <= now() ` + extra + `
	ORDER BY run_after, id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
)
UPDATE ` + t.name + ` q SET status = '` + t.claimed + `', attempt = attempt + 1, lease_owner = $1,
	lease_expires_at = now() + $2::interval, claimed_at = now(), updated_at = now()` + stage + `
FROM c WHERE q.id = c.id
RETURNING q.id, q.attempt, extract(epoch FROM now() - q.run_after)`
}

// QueueClaim claims one item of kind for owner with a lease. ok is false when nothing is claimable.
func (s *Store) QueueClaim(ctx context.Context, kind, owner string, lease time.Duration) (c Claimed, ok bool, err error) {
	t, err := tableFor(kind)
	if err != nil {
		return Claimed{}, false, err
	}
	var waited float64
	err = s.pool.QueryRow(ctx, claimSQL(t), owner, lease).Scan(&c.ID, &c.Attempt, &waited)
	switch {
	case err == pgx.ErrNoRows:
		return Claimed{}, false, nil
	case isUniqueViolation(err, "deployments_one_active"):
		// Another worker activated the same service+environment a moment ago: nothing to claim.
		return Claimed{}, false, nil
	case err != nil:
		return Claimed{}, false, interpret(err, "claiming "+kind)
	}
	c.Kind = kind
	c.Waited = time.Duration(max(waited, 0) * float64(time.Second))
	return c, true, nil
}

// QueueHeartbeat extends the lease of an item owner holds. held is false when the lease was lost
// (rescued by another replica); cancel is true when someone asked for the item to be cancelled.
func (s *Store) QueueHeartbeat(ctx context.Context, kind string, id int64, owner string, lease time.Duration) (held, cancel bool, err error) {
	t, err := tableFor(kind)
	if err != nil {
		return false, false, err
	}
	err = s.pool.QueryRow(ctx, `UPDATE `+t.name+` SET lease_expires_at = now() + $3::interval
		WHERE id = $1 AND lease_owner = $2 AND status IN `+t.active+`
		RETURNING cancel_requested`, id, owner, lease).Scan(&cancel)
	if err == pgx.ErrNoRows {
		return false, false, nil
	}
	if err != nil {
		return false, false, interpret(err, "renewing lease")
	}
	return true, cancel, nil
}

// QueueFinish records a final status for an item owner holds. It reports false when the lease had
// been lost, in which case nothing was written.
func (s *Store) QueueFinish(ctx context.Context, kind string, id int64, owner, status, errMsg string) (bool, error) {
	t, err := tableFor(kind)
	if err != nil {
		return false, err
	}
	// A finished deployment frees its service+environment for a deployment waiting on it, so it
	// wakes the workers; a finished run has nothing to hand on (planning notified for what it queued).
	notify, counted := "", ""
	if kind == KindDeployment {
		notify = `, n AS (SELECT pg_notify('` + ChannelWork + `', '` + KindDeployment + `') FROM u)`
		counted = ` AND (SELECT count(*) FROM n) >= 0` // referencing n is what makes it run
	}
	var held bool
	err = s.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE `+t.name+` SET status = $3, error = $4, finished_at = now(), updated_at = now(),
				lease_owner = NULL, lease_expires_at = NULL
			WHERE id = $1 AND lease_owner = $2 AND status IN `+t.active+`
			RETURNING id
		)`+notify+`
		SELECT EXISTS (SELECT 1 FROM u)`+counted, id, owner, status, errMsg).Scan(&held)
	if err != nil {
		return false, interpret(err, "finishing "+kind)
	}
	return held, nil
}

// QueueRetry puts an item owner holds back in the queue after delay, keeping its error for the
// record, or fails it when its attempts are used up. It returns the status written.
func (s *Store) QueueRetry(ctx context.Context, kind string, id int64, owner, errMsg string, delay time.Duration) (string, error) {
	t, err := tableFor(kind)
	if err != nil {
		return "", err
	}
	var status string
	err = s.pool.QueryRow(ctx, `
		UPDATE `+t.name+` SET
			status = CASE WHEN cancel_requested THEN 'cancelled'
			              WHEN attempt >= max_attempts THEN 'failed' ELSE 'queued' END,
			error = $3, run_after = now() + $4::interval, updated_at = now(),
			finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN now() END,
			lease_owner = NULL, lease_expires_at = NULL
		WHERE id = $1 AND lease_owner = $2 AND status IN `+t.active+`
		RETURNING status`, id, owner, errMsg, delay).Scan(&status)
	if err == pgx.ErrNoRows {
		return "", nil
	}
	return status, interpret(err, "retrying "+kind)
}

// QueueRelease hands an unfinished item back without counting the attempt, so another worker or
// replica picks it up at once. Used when a worker shuts down.
func (s *Store) QueueRelease(ctx context.Context, kind string, id int64, owner string) error {
	t, err := tableFor(kind)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `
		WITH u AS (
			UPDATE `+t.name+` SET status = 'queued', attempt = greatest(attempt - 1, 0), run_after = now(),
				updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
			WHERE id = $1 AND lease_owner = $2 AND status IN `+t.active+`
			RETURNING id
		)
		SELECT pg_notify('`+ChannelWork+`', $3) FROM u`, id, owner, kind)
	return interpret(err, "releasing "+kind)
}

// Rescued is an item whose lease expired and that was taken back.
type Rescued struct {
	Kind   string
	ID     int64
	Status string // queued again, or failed when out of attempts
}

// QueueRescue takes back every item of kind whose lease has expired: its worker died or hangs.
// It is queued again after an exponential backoff (base·2^attempt, capped at 64·base), or failed
// with a reason once it has used its attempts. For deployments it also supersedes queued ones that
// a newer deployment of the same service+environment has overtaken.
func (s *Store) QueueRescue(ctx context.Context, kind string, backoffBase time.Duration) ([]Rescued, error) {
	t, err := tableFor(kind)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
		UPDATE `+t.name+` SET
			status = CASE WHEN cancel_requested THEN 'cancelled'
			              WHEN attempt >= max_attempts THEN 'failed' ELSE 'queued' END,
			error = format('lease of %s expired while %s (attempt %s of %s): worker lost',
			               lease_owner, status, attempt, max_attempts),
			run_after = now() + $1::interval * power(2, least(attempt, 6)),
			finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN now() END,
			updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
		WHERE status IN `+t.active+` AND lease_expires_at < now()
		RETURNING id, status`, backoffBase)
	if err != nil {
		return nil, interpret(err, "rescuing "+kind)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rescued, error) {
		r := Rescued{Kind: kind}
		return r, row.Scan(&r.ID, &r.Status)
	})
	if err != nil {
		return nil, interpret(err, "rescuing "+kind)
	}
	if kind == KindDeployment {
		if _, err := s.pool.Exec(ctx, deploymentsSupersedeStale); err != nil {
			return out, interpret(err, "superseding stale deployments")
		}
	}
	return out, nil
}

// deploymentsSupersedeStale is latest-wins for deployments that came back to the queue after a
// newer one of the same service+environment was created (whatever became of the newer one).
const deploymentsSupersedeStale = `
UPDATE deployments q SET status = 'superseded', superseded_by = n.newest, finished_at = now(), updated_at = now(),
	error = 'superseded by deployment ' || n.newest
FROM (
	SELECT d.id, max(m.id) AS newest FROM deployments d
	JOIN deployments m ON m.repo = d.repo AND m.service = d.service AND m.environment = d.environment
		AND m.id > d.id AND m.status NOT IN ('superseded', 'cancelled')
	WHERE d.status = 'queued'
	GROUP BY d.id
) n
WHERE q.id = n.id AND q.status = 'queued'`

// QueueCancel asks for an item to be cancelled: a queued one is cancelled at once, a claimed one is
// flagged and its worker told through NOTIFY (and through its next heartbeat, should that be lost).
// It returns the status after the call.
func (s *Store) QueueCancel(ctx context.Context, kind string, id int64) (string, error) {
	t, err := tableFor(kind)
	if err != nil {
		return "", err
	}
	var status string
	err = s.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE `+t.name+` SET cancel_requested = true, updated_at = now(),
				status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
				finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
			WHERE id = $1 AND status IN ('queued', `+t.active[1:]+`
			RETURNING id, status
		), n AS (
			SELECT pg_notify('`+ChannelCancel+`', $2 || ':' || id) FROM u
		)
		SELECT status, (SELECT count(*) FROM n) FROM u`, id, kind).Scan(&status, new(int64))
	if err == pgx.ErrNoRows {
		return "", fmt.Errorf("cancelling %s %d: %w", kind, id, errNotCancellable(ctx, s, t, id))
	}
	return status, interpret(err, "cancelling "+kind)
}

// QueueDepth counts unfinished items of kind by status, for the queue-depth gauge.
func (s *Store) QueueDepth(ctx context.Context, kind string) (map[string]int64, error) {
	t, err := tableFor(kind)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT status, count(*) FROM `+t.name+`
		WHERE status IN ('queued', `+t.active[1:]+` GROUP BY status`)
	if err != nil {
		return nil, interpret(err, "counting queue")
	}
	out := map[string]int64{"queued": 0}
	for _, st := range activeStatuses(kind) {
		out[st] = 0
	}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, interpret(err, "counting queue")
		}
		out[st] = n
	}
	return out, interpret(rows.Err(), "counting queue")
}

func activeStatuses(kind string) []string {
	if kind == KindRun {
		return []string{"planning"}
	}
	return []string{"building", "pushing", "deploying"}
}

// errNotCancellable explains why QueueCancel changed nothing: the item is missing or already final.
func errNotCancellable(ctx context.Context, s *Store, t queueTable, id int64) error {
	var status string
	err := s.pool.QueryRow(ctx, `SELECT status FROM `+t.name+` WHERE id = $1`, id).Scan(&status)
	if err != nil {
		return interpret(err, t.name[:len(t.name)-1])
	}
	return deploy.Errorf(deploy.ECONFLICT, "already %s", status)
}
