-- Issue 9: who cancelled a run or a deployment, and why; manual deploys and redeploys are runs of
-- their own triggers ('manual', 'redeploy'), which needs no schema change.
ALTER TABLE runs ADD COLUMN cancelled_by text NOT NULL DEFAULT '',
                 ADD COLUMN cancel_reason text NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN cancelled_by text NOT NULL DEFAULT '',
                        ADD COLUMN cancel_reason text NOT NULL DEFAULT '';

-- The services (and environments) of the pipeline file a run left alone, and why:
-- [{"service", "environment", "reason"}], written by the planner under its claim.
ALTER TABLE runs ADD COLUMN skipped jsonb NOT NULL DEFAULT '[]';
