package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// The dashboard's reads. Each goes through an index (migration 0005) so a page costs the same
// with a thousand deployments or a million.

// DeploymentRun is a deployment with what its run says about why it happened.
type DeploymentRun struct {
	deploy.Deployment
	Trigger string // push, rollback, redeploy, manual…
	Branch  string
	Pusher  string // who pushed, or who asked for it
	Message string // the head commit's message, or what the action said
}

// ServiceLive is what runs in one service and environment: the last deployment that succeeded.
type ServiceLive struct {
	ID          int64
	RunID       int64
	CommitSHA   string
	ImageRef    string
	ImageDigest string
	Platform    string
	TargetKey   string
	TaskDef     string // the ECS task definition it registered, if any
	FinishedAt  time.Time
	Trigger     string
	Branch      string
	Pusher      string
	Message     string
}

// ServiceState is one repository × service × environment that ever deployed.
type ServiceState struct {
	Repo, Service, Environment string
	Live                       *ServiceLive  // nil when nothing went live yet
	Last                       DeploymentRun // the newest deployment, whatever its status
	Queued, Active             int
}

// dashboardServices walks the distinct keys of deployments_history one index probe each (a loose
// index scan: DISTINCT would read every row), then reads per key its newest deployment, its live
// one (deployments_live) and what waits or runs (the partial queue indexes).
var dashboardServices = `
WITH RECURSIVE keys AS (
	(SELECT repo, service, environment FROM deployments ORDER BY repo, service, environment LIMIT 1)
	UNION ALL
	SELECT n.repo, n.service, n.environment FROM keys k CROSS JOIN LATERAL (
		SELECT d.repo, d.service, d.environment FROM deployments d
		WHERE (d.repo, d.service, d.environment) > (k.repo, k.service, k.environment)
		ORDER BY d.repo, d.service, d.environment LIMIT 1) n
)
SELECT ` + prefixed("last.", deploymentColumns) + `, lr.trigger, lr.branch, lr.pusher, lr.message,
	live.id, coalesce(live.run_id, 0), coalesce(live.commit_sha, ''), coalesce(live.image_ref, ''),
	coalesce(live.image_digest, ''), coalesce(live.platform, ''), coalesce(live.target_key, ''),
	coalesce(live.task_definition_arn, ''), coalesce(live.finished_at, 'epoch'), coalesce(vr.trigger, ''), coalesce(vr.branch, ''),
	coalesce(vr.pusher, ''), coalesce(vr.message, ''),
	(SELECT count(*) FROM deployments q WHERE q.repo = k.repo AND q.service = k.service
		AND q.environment = k.environment AND q.status = 'queued'),
	(SELECT count(*) FROM deployments a WHERE a.repo = k.repo AND a.service = k.service
		AND a.environment = k.environment AND a.status IN ('building', 'pushing', 'deploying'))
FROM keys k
CROSS JOIN LATERAL (
	SELECT * FROM deployments d
	WHERE d.repo = k.repo AND d.service = k.service AND d.environment = k.environment
	ORDER BY d.id DESC LIMIT 1) last
JOIN runs lr ON lr.id = last.run_id
LEFT JOIN LATERAL (
	SELECT * FROM deployments d
	WHERE d.repo = k.repo AND d.service = k.service AND d.environment = k.environment
	  AND d.status = 'succeeded'
	ORDER BY d.finished_at DESC, d.id DESC LIMIT 1) live ON true
LEFT JOIN runs vr ON vr.id = live.run_id
ORDER BY k.repo, k.service, k.environment`

// DashboardServices returns every repository × service × environment that ever deployed, in name
// order: what is live, the newest deployment, and how many wait or run. One query.
func (s *Store) DashboardServices(ctx context.Context) ([]ServiceState, error) {
	rows, err := s.pool.Query(ctx, dashboardServices)
	if err != nil {
		return nil, interpret(err, "listing services")
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ServiceState, error) {
		var st ServiceState
		var l ServiceLive
		var liveID *int64
		dest := deploymentFields(&st.Last.Deployment)
		dest = append(dest, &st.Last.Trigger, &st.Last.Branch, &st.Last.Pusher, &st.Last.Message,
			&liveID, &l.RunID, &l.CommitSHA, &l.ImageRef, &l.ImageDigest, &l.Platform, &l.TargetKey,
			&l.TaskDef, &l.FinishedAt, &l.Trigger, &l.Branch, &l.Pusher, &l.Message, &st.Queued, &st.Active)
		if err := row.Scan(dest...); err != nil {
			return st, err
		}
		st.Repo, st.Service, st.Environment = st.Last.Repo, st.Last.Service, st.Last.Environment
		if liveID != nil {
			l.ID = *liveID
			st.Live = &l
		}
		return st, nil
	})
	return out, interpret(err, "listing services")
}

// HistoryFilter selects deployments for the history page; empty fields match everything.
type HistoryFilter struct {
	Repo, Service, Environment, Status string
	Branch, Trigger                    string // on the deployment's run
	Commit                             string // a prefix of the commit SHA, lower-case hex
	Before                             int64  // cursor: only ids below it
	Limit                              int
}

// DashboardHistory returns deployments newest first with their runs. The cursor is the id, so a
// page never shifts when newer rows arrive. Only the filters given appear in the statement, so
// each filter's index can be chosen even from a cached generic plan.
func (s *Store) DashboardHistory(ctx context.Context, f HistoryFilter) ([]DeploymentRun, error) {
	if f.Commit != "" && !isHex(f.Commit) {
		return nil, deploy.Errorf(deploy.EINVALID, "commit must be hexadecimal")
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	for _, c := range []struct{ cond, v string }{
		{"d.repo = $?", f.Repo}, {"d.service = $?", f.Service}, {"d.environment = $?", f.Environment},
		{"d.status = $?", f.Status}, {"r.branch = $?", f.Branch}, {"r.trigger = $?", f.Trigger},
	} {
		if c.v != "" {
			add(c.cond, c.v)
		}
	}
	if f.Commit != "" {
		// A range, not LIKE: it uses deployments_commit with a parameter too. Every SHA starting
		// with the prefix sorts between it and the prefix followed by "g", the first non-hex letter.
		add("d.commit_sha ~>=~ $?", f.Commit)
		add("d.commit_sha ~<~ $?", f.Commit+"g")
	}
	if f.Before > 0 {
		add("d.id < $?", f.Before)
	}
	q := `SELECT ` + prefixed("d.", deploymentColumns) + `, r.trigger, r.branch, r.pusher, r.message
		FROM deployments d JOIN runs r ON r.id = d.run_id`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY d.id DESC LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, interpret(err, "listing deployments")
	}
	ds, err := pgx.CollectRows(rows, scanDeploymentRun)
	return ds, interpret(err, "listing deployments")
}

func scanDeploymentRun(row pgx.CollectableRow) (DeploymentRun, error) {
	var d DeploymentRun
	err := row.Scan(append(deploymentFields(&d.Deployment), &d.Trigger, &d.Branch, &d.Pusher, &d.Message)...)
	return d, err
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// DashboardDeployment returns one deployment with its run.
func (s *Store) DashboardDeployment(ctx context.Context, id int64) (DeploymentRun, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+prefixed("d.", deploymentColumns)+`, r.trigger, r.branch, r.pusher, r.message
		FROM deployments d JOIN runs r ON r.id = d.run_id WHERE d.id = $1`, id)
	if err != nil {
		return DeploymentRun{}, interpret(err, "reading deployment")
	}
	d, err := pgx.CollectExactlyOneRow(rows, scanDeploymentRun)
	return d, interpret(err, fmt.Sprintf("deployment %d", id))
}

// DeploymentLogsTail returns the last limit lines of a deployment's log, oldest first, and whether
// earlier lines exist: the deployment page shows the end of a log of any size.
func (s *Store) DeploymentLogsTail(ctx context.Context, deploymentID int64, limit int) (lines []LogLine, more bool, err error) {
	rows, err := s.pool.Query(ctx, `SELECT id, stream, line, created_at FROM deployment_logs
		WHERE deployment_id = $1 ORDER BY id DESC LIMIT $2`, deploymentID, limit+1)
	if err != nil {
		return nil, false, interpret(err, "reading deployment logs")
	}
	lines, err = pgx.CollectRows(rows, pgx.RowToStructByPos[LogLine])
	if err != nil {
		return nil, false, interpret(err, "reading deployment logs")
	}
	if len(lines) > limit {
		lines, more = lines[:limit], true
	}
	for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
		lines[i], lines[j] = lines[j], lines[i]
	}
	return lines, more, nil
}

// DeploymentStatus returns a deployment's status alone: the log tail asks it between pages.
func (s *Store) DeploymentStatus(ctx context.Context, id int64) (deploy.Status, error) {
	var st deploy.Status
	err := s.pool.QueryRow(ctx, `SELECT status FROM deployments WHERE id = $1`, id).Scan(&st)
	return st, interpret(err, fmt.Sprintf("deployment %d", id))
}
