package store

// The queue's SQL, literal, one query per table and verb. The two tables share the queue columns
// (status, attempt, lease_owner, lease_expires_at, run_after, cancel_requested); their active
// statuses are deploy's: a run is active while planning, a deployment while building, pushing or
// deploying. Every write made under a claim is conditional on (id, lease_owner, attempt) and an
// active status: $1, $2, $3 below.

// cancelledError is the error of an item cancelled by $3 for the reason $4 (maybe empty);
// cancelledErrorAfter, of one whose worker stopped after such a request was recorded.
const (
	cancelledError      = `'cancelled by ' || $3 || coalesce(': ' || nullif($4, ''), '')`
	cancelledErrorAfter = `'cancelled by ' || cancelled_by || coalesce(': ' || nullif(cancel_reason, ''), '')`
)

var runsQueue = queueSQL{
	active: []string{"planning"},
	claim: `
WITH c AS (
	SELECT id FROM runs
	WHERE status = 'queued' AND run_after <= now()
	ORDER BY run_after, id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
)
UPDATE runs q SET status = 'planning', attempt = q.attempt + 1, lease_owner = $1,
	lease_expires_at = now() + $2::interval, claimed_at = now(), updated_at = now()
FROM c WHERE q.id = c.id
RETURNING q.id, q.attempt, extract(epoch FROM now() - q.run_after)`,

	heartbeat: `
UPDATE runs SET lease_expires_at = now() + $4::interval
WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'planning'
RETURNING cancel_requested`,

	finish: `
WITH u AS (
	UPDATE runs SET status = $4, finished_at = now(), updated_at = now(),
		error = CASE WHEN $4 = 'cancelled' AND cancelled_by <> '' THEN ` + cancelledErrorAfter + ` ELSE $5 END,
		lease_owner = NULL, lease_expires_at = NULL
	WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'planning'
	RETURNING id
)
SELECT EXISTS (SELECT 1 FROM u)`,

	retry: `
UPDATE runs SET
	status = CASE WHEN cancel_requested THEN 'cancelled'
	              WHEN attempt >= max_attempts THEN 'failed' ELSE 'queued' END,
	error = $4, run_after = now() + $5::interval, updated_at = now(),
	finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN now() END,
	lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'planning'
RETURNING status`,

	release: `
WITH u AS (
	UPDATE runs SET status = 'queued', attempt = greatest(attempt - 1, 0), run_after = now(),
		updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
	WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'planning'
	RETURNING id
), n AS (
	SELECT pg_notify('slipway_work', 'run') FROM u
)
SELECT EXISTS (SELECT 1 FROM u) AND (SELECT count(*) FROM n) >= 0`,

	rescue: `
UPDATE runs SET
	status = CASE WHEN cancel_requested THEN 'cancelled'
	              WHEN attempt >= max_attempts THEN 'failed' ELSE 'queued' END,
	error = format('lease of %s expired while %s (attempt %s of %s): worker lost',
	               lease_owner, status, attempt, max_attempts),
	run_after = now() + $1::interval * power(2, least(attempt, 6)),
	finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN now() END,
	updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
WHERE status = 'planning' AND lease_expires_at < now()
RETURNING id, status`,

	cancel: `
WITH u AS (
	UPDATE runs SET cancel_requested = true, updated_at = now(),
		cancelled_by = CASE WHEN cancel_requested THEN cancelled_by ELSE $3 END,
		cancel_reason = CASE WHEN cancel_requested THEN cancel_reason ELSE $4 END,
		status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
		error = CASE WHEN status = 'queued' THEN ` + cancelledError + ` ELSE error END,
		finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END
	WHERE id = $1 AND status IN ('queued', 'planning')
	RETURNING id, status
), n AS (
	SELECT pg_notify('slipway_cancel', $2 || ':' || id) FROM u
)
SELECT status, (SELECT count(*) FROM n) FROM u`,

	depth:  `SELECT status, count(*) FROM runs WHERE status IN ('queued', 'planning') GROUP BY status`,
	status: `SELECT status FROM runs WHERE id = $1`,
}

var deploymentsQueue = queueSQL{
	active: []string{"building", "pushing", "deploying"},
	// A deployment is passed over while its service+environment, or its target, has an active
	// one (the unique indexes deployments_one_active and deployments_one_active_target are what
	// guarantee it; this only keeps workers from tripping over them), and while a later push has a deployment there: latest wins by push order, so an
	// older push planned or retried late never rolls out over a newer one. A deployment whose
	// target was touched is claimed regardless, to put the target back (see the executor). A
	// deployment whose image is known (a rollback, a retry after the push) has nothing to build.
	claim: `
WITH c AS (
	SELECT q.id FROM deployments q
	WHERE q.status = 'queued' AND q.run_after <= now()
	  AND NOT EXISTS (SELECT 1 FROM deployments a
		WHERE a.repo = q.repo AND a.service = q.service AND a.environment = q.environment
		  AND a.status IN ('building', 'pushing', 'deploying'))
	  AND NOT EXISTS (SELECT 1 FROM deployments a
		WHERE q.target_key <> '' AND a.target_key = q.target_key
		  AND a.status IN ('building', 'pushing', 'deploying'))
	  AND (q.target_touched OR NOT EXISTS (SELECT 1 FROM deployments n
		WHERE n.repo = q.repo AND n.service = q.service AND n.environment = q.environment
		  AND n.run_id > q.run_id AND n.status NOT IN ('superseded', 'cancelled')))
	ORDER BY q.target_touched DESC, q.run_after, q.id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
)
UPDATE deployments q SET
	status = CASE WHEN q.image_digest = '' THEN 'building' ELSE 'deploying' END,
	attempt = q.attempt + 1, lease_owner = $1, lease_expires_at = now() + $2::interval,
	claimed_at = now(), updated_at = now()
FROM c WHERE q.id = c.id
RETURNING q.id, q.attempt, extract(epoch FROM now() - q.run_after)`,

	heartbeat: `
UPDATE deployments SET lease_expires_at = now() + $4::interval
WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status IN ('building', 'pushing', 'deploying')
RETURNING cancel_requested`,

	// A finished deployment frees its service+environment for one waiting on it: wake the workers.
	finish: `
WITH u AS (
	UPDATE deployments SET status = $4, finished_at = now(), updated_at = now(),
		error = CASE WHEN $4 = 'cancelled' AND cancelled_by <> '' THEN ` + cancelledErrorAfter + ` ELSE $5 END,
		lease_owner = NULL, lease_expires_at = NULL
	WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status IN ('building', 'pushing', 'deploying')
	RETURNING id
), n AS (
	SELECT pg_notify('slipway_work', 'deployment') FROM u
)
SELECT EXISTS (SELECT 1 FROM u) AND (SELECT count(*) FROM n) >= 0`,

	retry: `
UPDATE deployments SET
	status = CASE WHEN cancel_requested AND NOT target_touched THEN 'cancelled'
	              WHEN attempt >= max_attempts AND NOT target_touched THEN 'failed' ELSE 'queued' END,
	error = $4, run_after = now() + $5::interval, updated_at = now(),
	finished_at = CASE WHEN NOT target_touched AND (cancel_requested OR attempt >= max_attempts) THEN now() END,
	lease_owner = NULL, lease_expires_at = NULL
WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status IN ('building', 'pushing', 'deploying')
RETURNING status`,

	release: `
WITH u AS (
	UPDATE deployments SET status = 'queued', attempt = greatest(attempt - 1, 0), run_after = now(),
		updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
	WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status IN ('building', 'pushing', 'deploying')
	RETURNING id
), n AS (
	SELECT pg_notify('slipway_work', 'deployment') FROM u
)
SELECT EXISTS (SELECT 1 FROM u) AND (SELECT count(*) FROM n) >= 0`,

	// A deployment lost mid-rollout goes back at once (the service may have nothing running),
	// even out of attempts, cancelled or overtaken, so that a worker puts its target back; two
	// extra attempts bound that, should the restore itself keep killing workers.
	rescue: `
UPDATE deployments SET
	status = CASE WHEN target_touched AND attempt < max_attempts + 2 THEN 'queued'
	              WHEN cancel_requested THEN 'cancelled'
	              WHEN attempt >= max_attempts THEN 'failed' ELSE 'queued' END,
	error = format('lease of %s expired while %s (attempt %s of %s): worker lost',
	               lease_owner, status, attempt, max_attempts),
	run_after = CASE WHEN target_touched THEN now()
	                 ELSE now() + $1::interval * power(2, least(attempt, 6)) END,
	finished_at = CASE WHEN target_touched AND attempt < max_attempts + 2 THEN NULL
	                   WHEN cancel_requested OR attempt >= max_attempts THEN now() END,
	updated_at = now(), lease_owner = NULL, lease_expires_at = NULL
WHERE status IN ('building', 'pushing', 'deploying') AND lease_expires_at < now()
RETURNING id, status`,

	// A queued deployment whose target was touched is not cancelled at once: its worker must
	// first put the target back, then it ends cancelled.
	cancel: `
WITH u AS (
	UPDATE deployments SET cancel_requested = true, updated_at = now(),
		cancelled_by = CASE WHEN cancel_requested THEN cancelled_by ELSE $3 END,
		cancel_reason = CASE WHEN cancel_requested THEN cancel_reason ELSE $4 END,
		status = CASE WHEN status = 'queued' AND NOT target_touched THEN 'cancelled' ELSE status END,
		error = CASE WHEN status = 'queued' AND NOT target_touched THEN ` + cancelledError + ` ELSE error END,
		finished_at = CASE WHEN status = 'queued' AND NOT target_touched THEN now() ELSE finished_at END
	WHERE id = $1 AND status IN ('queued', 'building', 'pushing', 'deploying')
	RETURNING id, status
), n AS (
	SELECT pg_notify('slipway_cancel', $2 || ':' || id) FROM u
)
SELECT status, (SELECT count(*) FROM n) FROM u`,

	depth: `SELECT status, count(*) FROM deployments
		WHERE status IN ('queued', 'building', 'pushing', 'deploying') GROUP BY status`,
	status: `SELECT status FROM deployments WHERE id = $1`,
}

// deploymentsSupersedeStale is latest-wins for deployments that came back to the queue after a
// later push queued one of the same service+environment (whatever became of it).
const deploymentsSupersedeStale = `
UPDATE deployments q SET status = 'superseded', superseded_by = n.newest, finished_at = now(), updated_at = now(),
	error = 'superseded by deployment ' || n.newest || ' of a later push'
FROM (
	SELECT d.id, (array_agg(m.id ORDER BY m.run_id DESC))[1] AS newest FROM deployments d
	JOIN deployments m ON m.repo = d.repo AND m.service = d.service AND m.environment = d.environment
		AND m.run_id > d.run_id AND m.status NOT IN ('superseded', 'cancelled')
	WHERE d.status = 'queued' AND NOT d.target_touched
	GROUP BY d.id
) n
WHERE q.id = n.id AND q.status = 'queued' AND NOT q.target_touched`
