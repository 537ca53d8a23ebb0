package store

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/deploy"
)

const runColumns = `id, coalesce(delivery_id, ''), trigger, repo, ref, branch, before_sha, after_sha, clone_url,
	pusher, message, status, error, attempt, cancelled_by, cancel_reason, created_at, finished_at, skipped`

func scanRun(row pgx.CollectableRow) (deploy.Run, error) {
	var r deploy.Run
	err := row.Scan(&r.ID, &r.DeliveryID, &r.Trigger, &r.Repo, &r.Ref, &r.Branch, &r.BeforeSHA, &r.AfterSHA,
		&r.CloneURL, &r.Pusher, &r.Message, &r.Status, &r.Error, &r.Attempt, &r.CancelledBy, &r.CancelReason,
		&r.CreatedAt, &r.FinishedAt, &r.Skipped)
	if r.Status == deploy.StatusSkipped {
		r.Reason, r.Error = r.Error, "" // the column holds why, for every final status
	}
	return r, err
}

// RunGet returns one run.
func (s *Store) RunGet(ctx context.Context, id int64) (deploy.Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id)
	if err != nil {
		return deploy.Run{}, interpret(err, "reading run")
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRun)
	return r, interpret(err, fmt.Sprintf("run %d", id))
}

// RunCreate queues a run that no webhook delivered (a manual trigger, a test) and wakes a planner.
// The repository name is stored canonical (lower-case), the clone URL without credentials.
func (s *Store) RunCreate(ctx context.Context, r deploy.Run) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `
		WITH r AS (
			INSERT INTO runs (trigger, repo, ref, branch, before_sha, after_sha, clone_url, pusher, message)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id
		), n AS (SELECT pg_notify('`+ChannelWork+`', 'run') FROM r)
		SELECT id FROM r, (SELECT count(*) FROM n) c`,
		r.Trigger, strings.ToLower(r.Repo), r.Ref, r.Branch, r.BeforeSHA, r.AfterSHA, withoutCredentials(r.CloneURL), r.Pusher, r.Message).Scan(&id)
	return id, interpret(err, "creating run")
}

// RunSkipped records the services a run leaves alone and why, under the planner's claim on it.
func (s *Store) RunSkipped(ctx context.Context, c Claim, skips []deploy.Skip) error {
	if skips == nil {
		skips = []deploy.Skip{}
	}
	tag, err := s.pool.Exec(ctx, `UPDATE runs SET skipped = $4, updated_at = now()
		WHERE id = $1 AND lease_owner = $2 AND attempt = $3 AND status = 'planning'`, c.ID, c.Owner, c.Attempt, skips)
	if err != nil {
		return interpret(err, "recording skipped services")
	}
	if tag.RowsAffected() == 0 {
		return ErrNotHeld
	}
	return nil
}

// urlUserinfo matches the "scheme://user:password@" of a URL; userinfo holds no "/", "?" or "#".
var urlUserinfo = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@`)

// withoutCredentials drops a URL's userinfo. runs.clone_url is shown by the API, so a credential
// must never be stored in it, whoever passed the URL (migration 0003 cleans older rows alike).
func withoutCredentials(cloneURL string) string {
	return urlUserinfo.ReplaceAllString(cloneURL, "${1}")
}
