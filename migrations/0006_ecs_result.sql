-- Issue 8: what a deployment's rollout put on its platform (deploy.Result), recorded under the
-- worker's claim before the target is pointed there: for ECS, the task definition the service was
-- updated to and the one it named before. A rollback updates the service to the recorded one.
ALTER TABLE deployments ADD COLUMN task_definition_arn text NOT NULL DEFAULT '',
                        ADD COLUMN previous_task_definition_arn text NOT NULL DEFAULT '';
