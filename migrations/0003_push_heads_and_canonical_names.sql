-- Issue 7: a replayed push never deploys an older commit, repository names are canonical, and no
-- credential stays in a stored clone URL.

-- The newest push received for each branch: GitHub's repository.pushed_at (unix seconds) and the
-- commits (after and before) of the pushes of that second. A push queues its run only if it moves
-- this forward, in the statement that records its delivery (store.webhookIngest).
CREATE TABLE branch_heads (
    repo        text NOT NULL,
    branch      text NOT NULL,
    pushed_at   bigint NOT NULL,
    commits     text[] NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (repo, branch)
);

-- GitHub's repository names are case-insensitive: runs and deliveries record them lower-cased.
UPDATE runs SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE webhook_deliveries SET repo = lower(repo) WHERE repo <> lower(repo);
UPDATE deployments SET repo = lower(repo) WHERE repo <> lower(repo);

-- runs.clone_url is shown by the API: drop any userinfo (a token) an earlier version stored.
UPDATE runs SET clone_url = regexp_replace(clone_url, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1')
WHERE clone_url ~ '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@';
