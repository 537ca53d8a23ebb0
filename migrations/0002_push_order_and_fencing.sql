-- Latest wins by push order: deployments compare their runs' ids (the order webhooks were
-- received), not their own ids (the order planning committed).
CREATE INDEX deployments_key_push ON deployments (repo, service, environment, run_id);

-- Every log line records the attempt that wrote it: a write is accepted only while that attempt
-- holds the deployment's claim, so within one deployment attempts never go backwards.
ALTER TABLE deployment_logs ADD COLUMN attempt integer NOT NULL DEFAULT 0;

-- Set once a worker starts changing the deployment's target. From then until the deployment is
-- final the target may be in any state (old container stopped, new one not started), so a
-- rescued deployment is always claimed once more, whatever its attempts, cancel flag or newer
-- pushes, to put the target back to what is recorded live.
ALTER TABLE deployments ADD COLUMN target_touched boolean NOT NULL DEFAULT false;

-- A deployment's spec is a typed domain value (deploy.Spec): how to build the image and the
-- destination it rolls out to, on a platform (docker, swarm, ecs). Rows written before keep their
-- meaning: {"build": service, "target": block} becomes {"build": …, "destination": …}.
ALTER TABLE deployments RENAME COLUMN target_kind TO platform;
ALTER TABLE deployments RENAME COLUMN target TO spec;
UPDATE deployments SET spec = jsonb_strip_nulls(jsonb_build_object(
	'build', jsonb_build_object(
		'image', spec->'build'->'image', 'dockerfile', spec->'build'->'dockerfile',
		'context', spec->'build'->'context', 'build_args', spec->'build'->'build_args',
		'stage', spec->'build'->'target'),
	'destination', ((spec->'target') - 'kind') || jsonb_build_object('platform', spec->'target'->'kind'),
	'rollback_of', spec->'rollback_of'))
WHERE spec ? 'target';

-- One rollout at a time per target, whichever repository, service or environment names it: two
-- spellings of one repository, or two services naming one container, must never roll it out at
-- once. target_key is the destination's platform and name ("docker:web", "ecs:prod/api").
ALTER TABLE deployments ADD COLUMN target_key text NOT NULL DEFAULT '';
UPDATE deployments SET target_key = platform || ':' || coalesce(CASE platform
	WHEN 'docker' THEN spec->'destination'->'docker'->>'container'
	WHEN 'swarm' THEN spec->'destination'->'swarm'->>'service'
	WHEN 'ecs' THEN (spec->'destination'->'ecs'->>'cluster') || '/' || (spec->'destination'->'ecs'->>'service')
	END, '')
WHERE platform <> '';
CREATE UNIQUE INDEX deployments_one_active_target ON deployments (target_key)
	WHERE status IN ('building', 'pushing', 'deploying') AND target_key <> '';
