-- Issue 9: the dashboard's reads, each through an index even with a million deployments.

-- What is live per service and environment: the last deployment that succeeded there (the
-- services page and the confirmation pages read one row per key).
CREATE INDEX deployments_live ON deployments (repo, service, environment, finished_at DESC, id DESC)
	WHERE status = 'succeeded';

-- The history filtered by a commit prefix.
CREATE INDEX deployments_commit ON deployments (commit_sha text_pattern_ops);

-- The history filtered by what lives on the run: branch and trigger.
CREATE INDEX runs_branch ON runs (branch, id);
CREATE INDEX runs_trigger ON runs (trigger, id);
