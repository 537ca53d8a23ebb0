package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Delivery is one webhook delivery as recorded, and the answer Slipway gave to it.
type Delivery struct {
	ID         string
	Event      string
	Repo       string // owner/name, canonical (lower-case)
	Ref        string
	Outcome    string
	Reason     string
	StatusCode int
	RunID      int64 // 0 when the delivery queued no run
	// PushedAt orders the pushes of a branch (GitHub's repository.pushed_at, unix seconds); 0 when
	// unknown. It is not stored with the delivery: see WebhookIngest.
	PushedAt int64
}

// OutcomeStale is recorded, with status 200 and no run, for a push that is not newer than one
// already received for its branch.
const OutcomeStale = "stale"

// webhookIngest records a delivery and, when run is set, queues the run, in one statement (one
// round trip, one implicit transaction). A delivery id seen before inserts nothing: the CTE chain
// stops at ON CONFLICT, so a redelivery can never create a second run. It sends no NOTIFY: a
// transaction that notifies holds a database-wide lock through its commit's WAL flush, which
// serialized concurrent webhooks (measured: 4x fewer commits per second at 16 clients). The caller
// wakes the workers after commit through a Notifier instead.
//
// A push that knows its pushed_at ($15) queues its run only if it moves its branch's head forward
// (head): a later second, or the same second and a commit not seen in it yet ($16: after, then
// before). ON CONFLICT DO UPDATE locks the head row and judges against its latest version, so of
// concurrent deliveries each is judged after the one before it; a push the snapshot already shows
// stale takes no lock, so a storm of replays does not queue up behind it. Otherwise the delivery
// is recorded stale ($17 says why) and queues nothing. A delivery id already recorded leaves the
// head alone.
const webhookIngest = `
WITH head AS (
	INSERT INTO branch_heads AS h (repo, branch, pushed_at, commits)
	SELECT $3, $9, $15::bigint, $16::text[]
	WHERE $8::boolean AND $15::bigint > 0
		AND NOT EXISTS (SELECT 1 FROM webhook_deliveries WHERE delivery_id = $1)
		-- Stale already in this snapshot (heads only move forward): skip the row lock.
		AND NOT EXISTS (SELECT 1 FROM branch_heads WHERE repo = $3 AND branch = $9
			AND (pushed_at > $15::bigint OR pushed_at = $15::bigint AND $11 = ANY (commits)))
	ON CONFLICT (repo, branch) DO UPDATE SET
		pushed_at = excluded.pushed_at,
		commits = CASE WHEN excluded.pushed_at > h.pushed_at THEN excluded.commits
			ELSE h.commits || excluded.commits END,
		updated_at = now()
	WHERE excluded.pushed_at > h.pushed_at
		OR excluded.pushed_at = h.pushed_at AND NOT excluded.commits[1] = ANY (h.commits)
	RETURNING 1
), v AS (
	SELECT NOT ($8::boolean AND $15::bigint > 0) OR EXISTS (SELECT 1 FROM head) AS fresh
), d AS (
	INSERT INTO webhook_deliveries (delivery_id, event, repo, ref, outcome, reason, status_code)
	SELECT $1, $2, $3, $4,
		CASE WHEN v.fresh THEN $5 ELSE '` + OutcomeStale + `' END,
		CASE WHEN v.fresh THEN $6 ELSE $17::text END,
		CASE WHEN v.fresh THEN $7 ELSE 200 END
	FROM v
	ON CONFLICT (delivery_id) DO NOTHING
	RETURNING delivery_id
), r AS (
	INSERT INTO runs (delivery_id, repo, ref, branch, before_sha, after_sha, clone_url, pusher, message)
	SELECT delivery_id, $3, $4, $9, $10, $11, $12, $13, $14 FROM d, v WHERE $8::boolean AND v.fresh
	RETURNING id
)
SELECT EXISTS (SELECT 1 FROM d), coalesce((SELECT id FROM r), 0), (SELECT fresh FROM v)`

// Every WebhookIngest error wraps one of these, so the caller can tell GitHub the truth.
var (
	// ErrNotRecorded: the statement failed, or never reached PostgreSQL; nothing was committed.
	ErrNotRecorded = errors.New("delivery not recorded")
	// ErrOutcomeUnknown: the statement was sent but its answer was lost (a deadline, a broken
	// connection), so it may have committed; or a redelivery's stored answer could not be read.
	ErrOutcomeUnknown = errors.New("delivery may have been recorded")
)

// WebhookIngest records d and, if run is non-nil, the run it queues. It returns the delivery as
// stored and whether this call inserted it; for a redelivery the stored answer comes back unchanged.
//
// A push is deployed only if it is newer than every push already received for its branch (same
// canonical repository and branch), by d.PushedAt; within one second, by its commits: a push
// whose after commit was already the before or after of a push of that second is older or the
// same, and so is stale. Such a delivery is recorded with OutcomeStale, status 200 and the
// reason, and queues nothing: this is what keeps a replayed signed body (new delivery id, old
// commit) from deploying. A push without pushed_at (GitHub always sends it) is not ordered. The
// price of one-second timestamps: a force push back, within the second, to a commit that second
// already saw is taken for a replay, and waits for the next push to deploy.
func (s *Store) WebhookIngest(ctx context.Context, d Delivery, run *deploy.Run) (Delivery, bool, error) {
	d.Repo = strings.ToLower(d.Repo) // canonical, whoever calls; see migration 0003
	var r deploy.Run
	var commits []string
	staleReason := ""
	if run != nil {
		r = *run
		r.CloneURL = withoutCredentials(r.CloneURL)
		commits = append(commits, r.AfterSHA)
		if r.BeforeSHA != "" && strings.Trim(r.BeforeSHA, "0") != "" {
			commits = append(commits, r.BeforeSHA)
		}
		staleReason = fmt.Sprintf("push of %s to %s is not newer than one already received for the branch (pushed_at %d): not deployed",
			r.AfterSHA, r.Branch, d.PushedAt)
	}
	// Acquired apart from the query so that a pool that cannot hand out a connection is known to
	// have sent nothing.
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return Delivery{}, false, fmt.Errorf("%w: %w", ErrNotRecorded, interpret(err, "acquiring a connection"))
	}
	var inserted, fresh bool
	var runID int64
	err = conn.QueryRow(ctx, webhookIngest,
		d.ID, d.Event, d.Repo, d.Ref, d.Outcome, d.Reason, d.StatusCode,
		run != nil, r.Branch, r.BeforeSHA, r.AfterSHA, r.CloneURL, r.Pusher, r.Message,
		d.PushedAt, commits, staleReason,
	).Scan(&inserted, &runID, &fresh)
	conn.Release()
	if err != nil {
		return Delivery{}, false, fmt.Errorf("%w: %w", ingestOutcome(err), interpret(err, "recording webhook delivery"))
	}
	if inserted {
		d.RunID = runID
		if !fresh {
			d.Outcome, d.Reason, d.StatusCode = OutcomeStale, staleReason, 200
		}
		return d, true, nil
	}
	stored, err := s.WebhookDeliveryGet(ctx, d.ID)
	if err != nil {
		// The conflict proves an earlier delivery committed; only its answer could not be read.
		return Delivery{}, false, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
	}
	return stored, false, nil
}

// ingestOutcome says whether a failed ingest statement may have committed. An ERROR from the
// server aborted the statement's implicit transaction (once the commit is written, PostgreSQL
// cannot raise one); an error pgx raised before sending a byte left nothing to commit. Anything
// else, a deadline or a broken connection mid-statement or a FATAL from a dying backend, may have
// come after the commit.
func ingestOutcome(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Severity == "ERROR" || pgconn.SafeToRetry(err) {
		return ErrNotRecorded
	}
	return ErrOutcomeUnknown
}

// WebhookDeliveryGet returns a recorded delivery with the run it queued, if any.
func (s *Store) WebhookDeliveryGet(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	err := s.pool.QueryRow(ctx, `
		SELECT w.delivery_id, w.event, w.repo, w.ref, w.outcome, w.reason, w.status_code, coalesce(r.id, 0)
		FROM webhook_deliveries w LEFT JOIN runs r ON r.delivery_id = w.delivery_id
		WHERE w.delivery_id = $1`, id).
		Scan(&d.ID, &d.Event, &d.Repo, &d.Ref, &d.Outcome, &d.Reason, &d.StatusCode, &d.RunID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, deploy.Errorf(deploy.ENOTFOUND, "delivery %s not found", id)
	}
	return d, interpret(err, "reading webhook delivery")
}
