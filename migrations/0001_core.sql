-- Core tables: deliveries received from GitHub, runs (one per push), deployments (the queue)
-- and their log lines.

CREATE TABLE webhook_deliveries (
    delivery_id  text PRIMARY KEY,
    event        text NOT NULL,
    repo         text NOT NULL DEFAULT '',
    ref          text NOT NULL DEFAULT '',
    outcome      text NOT NULL,
    reason       text NOT NULL DEFAULT '',
    status_code  integer NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_received_at ON webhook_deliveries (received_at DESC);

-- runs and deployments share the queue columns (status, attempt, lease, run_after, cancel flag):
-- internal/queue claims from both through the same queries.
CREATE TABLE runs (
    id                bigserial PRIMARY KEY,
    delivery_id       text UNIQUE REFERENCES webhook_deliveries (delivery_id),
    trigger           text NOT NULL DEFAULT 'push', -- push, rollback, test
    repo              text NOT NULL,
    ref               text NOT NULL,
    branch            text NOT NULL,
    before_sha        text NOT NULL DEFAULT '',
    after_sha         text NOT NULL,
    clone_url         text NOT NULL DEFAULT '',
    pusher            text NOT NULL DEFAULT '',
    message           text NOT NULL DEFAULT '',
    status            text NOT NULL DEFAULT 'queued',
    error             text NOT NULL DEFAULT '',
    attempt           integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL DEFAULT 5,
    run_after         timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    claimed_at        timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT runs_status_valid CHECK (status IN
        ('queued', 'planning', 'planned', 'skipped', 'failed', 'cancelled'))
);
CREATE INDEX runs_claimable ON runs (run_after, id) WHERE status = 'queued';
CREATE INDEX runs_leased ON runs (lease_expires_at) WHERE status = 'planning';
CREATE INDEX runs_repo_created ON runs (repo, created_at DESC);

CREATE TABLE deployments (
    id                bigserial PRIMARY KEY,
    run_id            bigint NOT NULL REFERENCES runs (id),
    repo              text NOT NULL,
    service           text NOT NULL,
    environment       text NOT NULL,
    target_kind       text NOT NULL DEFAULT '',
    target            jsonb NOT NULL DEFAULT '{}',
    commit_sha        text NOT NULL,
    status            text NOT NULL DEFAULT 'queued',
    error             text NOT NULL DEFAULT '',
    image_ref         text NOT NULL DEFAULT '',
    image_digest      text NOT NULL DEFAULT '',
    replaced_id       bigint REFERENCES deployments (id),
    superseded_by     bigint REFERENCES deployments (id),
    attempt           integer NOT NULL DEFAULT 0,
    max_attempts      integer NOT NULL DEFAULT 3,
    run_after         timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now(),
    claimed_at        timestamptz,
    building_at       timestamptz,
    pushing_at        timestamptz,
    deploying_at      timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deployments_status_valid CHECK (status IN
        ('queued', 'building', 'pushing', 'deploying', 'succeeded', 'failed',
         'cancelled', 'superseded', 'rolled_back'))
);
-- The invariant that two workers or replicas can never roll out one service at once.
CREATE UNIQUE INDEX deployments_one_active
    ON deployments (repo, service, environment)
    WHERE status IN ('building', 'pushing', 'deploying');
CREATE INDEX deployments_claimable ON deployments (run_after, id) WHERE status = 'queued';
CREATE INDEX deployments_queued_key ON deployments (repo, service, environment) WHERE status = 'queued';
CREATE INDEX deployments_leased ON deployments (lease_expires_at)
    WHERE status IN ('building', 'pushing', 'deploying');
-- Planning a run twice (its worker died after creating deployments) must not deploy twice.
CREATE UNIQUE INDEX deployments_run_service ON deployments (run_id, service, environment);
CREATE INDEX deployments_history ON deployments (repo, service, environment, id DESC);

CREATE TABLE deployment_logs (
    id             bigserial PRIMARY KEY,
    deployment_id  bigint NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    stream         text NOT NULL DEFAULT 'system',
    line           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployment_logs_deployment ON deployment_logs (deployment_id, id);
