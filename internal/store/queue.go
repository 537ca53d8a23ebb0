package store

import (
	"context"
	"errors"
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

// Claim is one worker's hold on a queue item: the replica that owns the lease and the attempt it
// claimed. Every write a worker makes for the item is conditional on both, so a worker that lost
// its lease (paused, partitioned, slow) cannot overwrite the work of the one that took over.
type Claim struct {
	Kind    string
	ID      int64
	Owner   string
	Attempt int
}

// ErrNotHeld is returned by a write made under a claim that is no longer held: the write was
// refused and nothing changed.
var ErrNotHeld = errors.New("claim no longer held: another worker took the item over")

// Claimed is an item a worker now holds.
type Claimed struct {
	Claim
	// Waited is how long the item was claimable before this claim.
	Waited time.Duration
}

// queueSQL holds one table's queue queries. They are literal per table (see queue_sql.go) so each
// reads, and plans, on its own; Store methods pick them by kind.
type queueSQL struct {
	claim, heartbeat, finish, retry, release, rescue, cancel, depth, status string
	active                                                                  []string
}

func queriesFor(kind string) (queueSQL, error) {
	switch kind {
	case KindRun:
		return runsQueue, nil
	case KindDeployment:
		return deploymentsQueue, nil
	}
	return queueSQL{}, fmt.Errorf("unknown queue kind %q", kind)
}

// QueueClaim claims one item of kind for owner with a lease. ok is false when nothing is claimable.
func (s *Store) QueueClaim(ctx context.Context, kind, owner string, lease time.Duration) (c Claimed, ok bool, err error) {
	q, err := queriesFor(kind)
	if err != nil {
		return Claimed{}, false, err
	}
	var waited float64
	err = s.pool.QueryRow(ctx, q.claim, owner, lease).Scan(&c.ID, &c.Attempt, &waited)
	switch {
	case err == pgx.ErrNoRows:
		return Claimed{}, false, nil
	case isUniqueViolation(err, "deployments_one_active"), isUniqueViolation(err, "deployments_one_active_target"):
		// Another worker activated the same service+environment, or target, a moment ago.
		return Claimed{}, false, nil
	case err != nil:
		return Claimed{}, false, interpret(err, "claiming "+kind)
	}
	c.Kind, c.Owner = kind, owner
	c.Waited = time.Duration(max(waited, 0) * float64(time.Second))
	return c, true, nil
}

// QueueHeartbeat extends the lease of a claimed item. It returns ErrNotHeld when the claim was
// lost (rescued by another replica); cancel is true when someone asked for the item to be cancelled.
func (s *Store) QueueHeartbeat(ctx context.Context, c Claim, lease time.Duration) (cancel bool, err error) {
	q, err := queriesFor(c.Kind)
	if err != nil {
		return false, err
	}
	err = s.pool.QueryRow(ctx, q.heartbeat, c.ID, c.Owner, c.Attempt, lease).Scan(&cancel)
	if err == pgx.ErrNoRows {
		return false, ErrNotHeld
	}
	return cancel, interpret(err, "renewing lease")
}

// QueueFinish records a final status for a claimed item. It returns ErrNotHeld, having written
// nothing, when the claim had been lost.
func (s *Store) QueueFinish(ctx context.Context, c Claim, status, errMsg string) error {
	q, err := queriesFor(c.Kind)
	if err != nil {
		return err
	}
	var held bool
	if err := s.pool.QueryRow(ctx, q.finish, c.ID, c.Owner, c.Attempt, status, errMsg).Scan(&held); err != nil {
		return interpret(err, "finishing "+c.Kind)
	}
	if !held {
		return ErrNotHeld
	}
	return nil
}

// QueueRetry puts a claimed item back in the queue after delay, keeping its error for the record,
// or fails it when its attempts are used up. It returns the status written, or ErrNotHeld.
func (s *Store) QueueRetry(ctx context.Context, c Claim, errMsg string, delay time.Duration) (string, error) {
	q, err := queriesFor(c.Kind)
	if err != nil {
		return "", err
	}
	var status string
	err = s.pool.QueryRow(ctx, q.retry, c.ID, c.Owner, c.Attempt, errMsg, delay).Scan(&status)
	if err == pgx.ErrNoRows {
		return "", ErrNotHeld
	}
	return status, interpret(err, "retrying "+c.Kind)
}

// QueueRelease hands an unfinished item back without counting the attempt, so another worker or
// replica picks it up at once. Used when a worker shuts down.
func (s *Store) QueueRelease(ctx context.Context, c Claim) error {
	q, err := queriesFor(c.Kind)
	if err != nil {
		return err
	}
	var released bool
	if err := s.pool.QueryRow(ctx, q.release, c.ID, c.Owner, c.Attempt).Scan(&released); err != nil {
		return interpret(err, "releasing "+c.Kind)
	}
	if !released {
		return ErrNotHeld
	}
	return nil
}

// Rescued is an item whose lease expired and that was taken back.
type Rescued struct {
	Kind   string
	ID     int64
	Status string // queued again, or failed when out of attempts
}

// QueueRescue takes back every item of kind whose lease has expired: its worker died or hangs.
// It is queued again after an exponential backoff (base·2^attempt, capped at 64·base), or failed
// with a reason once it has used its attempts. A deployment interrupted mid-rollout is the
// exception: it is queued again at once, even out of attempts, so that its next worker puts the
// target back in a known state (see the executor). For deployments it also supersedes queued ones
// that a newer push has overtaken.
func (s *Store) QueueRescue(ctx context.Context, kind string, backoffBase time.Duration) ([]Rescued, error) {
	q, err := queriesFor(kind)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, q.rescue, backoffBase)
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

// Cancel is who asks for a cancel, and why (may be empty); both are recorded on the item and
// name it in its error once it ends.
type Cancel struct {
	By     string
	Reason string
}

// QueueCancel asks for an item to be cancelled: a queued one is cancelled at once, a claimed one is
// flagged and its worker told through NOTIFY (and through its next heartbeat, should that be lost).
// A run already planned is cancelled through its unfinished deployments. It returns the item's
// status after the call; a second request keeps the first one's who and why.
func (s *Store) QueueCancel(ctx context.Context, kind string, id int64, c Cancel) (string, error) {
	q, err := queriesFor(kind)
	if err != nil {
		return "", err
	}
	var status string
	err = s.pool.QueryRow(ctx, q.cancel, id, kind, c.By, c.Reason).Scan(&status, new(int64))
	if err == pgx.ErrNoRows {
		if kind == KindRun {
			return s.runCancelDeployments(ctx, q, id, c)
		}
		return "", fmt.Errorf("cancelling %s %d: %w", kind, id, errNotCancellable(ctx, s, q, kind, id))
	}
	return status, interpret(err, "cancelling "+kind)
}

// runCancelDeployments cancels the unfinished deployments of a planned run; a run without any is
// not cancellable.
func (s *Store) runCancelDeployments(ctx context.Context, q queueSQL, id int64, c Cancel) (string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT d.id FROM runs r JOIN deployments d ON d.run_id = r.id
		WHERE r.id = $1 AND r.status = 'planned' AND d.status IN ('queued', 'building', 'pushing', 'deploying')
		ORDER BY d.id`, id)
	if err != nil {
		return "", interpret(err, "cancelling run")
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return "", interpret(err, "cancelling run")
	}
	if len(ids) == 0 {
		return "", fmt.Errorf("cancelling run %d: %w", id, errNotCancellable(ctx, s, q, KindRun, id))
	}
	cancelled := 0
	for _, d := range ids {
		_, err := s.QueueCancel(ctx, KindDeployment, d, c)
		switch {
		case deploy.ErrorCode(err) == deploy.ECONFLICT: // it finished meanwhile
		case err != nil:
			return "", err
		default:
			cancelled++
		}
	}
	if cancelled == 0 {
		return "", fmt.Errorf("cancelling run %d: %w", id, errNotCancellable(ctx, s, q, KindRun, id))
	}
	return string(deploy.StatusPlanned), nil
}

// QueueDepth counts unfinished items of kind by status, for the queue-depth gauge.
func (s *Store) QueueDepth(ctx context.Context, kind string) (map[string]int64, error) {
	q, err := queriesFor(kind)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, q.depth)
	if err != nil {
		return nil, interpret(err, "counting queue")
	}
	out := map[string]int64{"queued": 0}
	for _, st := range q.active {
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

// errNotCancellable explains why QueueCancel changed nothing: the item is missing or already final.
func errNotCancellable(ctx context.Context, s *Store, q queueSQL, kind string, id int64) error {
	var status string
	if err := s.pool.QueryRow(ctx, q.status, id).Scan(&status); err != nil {
		return interpret(err, kind)
	}
	if kind == KindRun && status == string(deploy.StatusPlanned) {
		return deploy.Errorf(deploy.ECONFLICT, "already planned, and every deployment it planned has finished")
	}
	return deploy.Errorf(deploy.ECONFLICT, "already %s", status)
}
