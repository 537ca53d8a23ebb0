package store

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// LogLine is one line of a deployment's output.
type LogLine struct {
	ID        int64     `json:"id"`
	Stream    string    `json:"stream"`
	Line      string    `json:"line"`
	CreatedAt time.Time `json:"created_at"`
}

// DeploymentLogsAppend stores lines in one round trip, under the writer's claim on the deployment:
// a worker that lost its claim gets ErrNotHeld and nothing is written, so a deployment's log never
// goes back from one attempt to an earlier one.
func (s *Store) DeploymentLogsAppend(ctx context.Context, c Claim, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	streams := make([]string, len(lines))
	texts := make([]string, len(lines))
	times := make([]time.Time, len(lines))
	for i, l := range lines {
		streams[i], texts[i], times[i] = l.Stream, l.Line, l.CreatedAt
	}
	// The NOTIFY (only when lines were written) wakes the dashboard's live tails on every replica.
	var inserted int64
	err := s.pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO deployment_logs (deployment_id, attempt, stream, line, created_at)
			SELECT $1, $3, s, l, t FROM unnest($4::text[], $5::text[], $6::timestamptz[]) AS u(s, l, t)
			WHERE EXISTS (SELECT 1 FROM deployments WHERE id = $1 AND lease_owner = $2 AND attempt = $3
				AND status IN ('building', 'pushing', 'deploying'))
			RETURNING 1
		), n AS (
			SELECT pg_notify('`+ChannelLogs+`', $1::bigint::text) WHERE EXISTS (SELECT 1 FROM ins)
		)
		SELECT (SELECT count(*) FROM ins) + 0 * (SELECT count(*) FROM n)`,
		c.ID, c.Owner, c.Attempt, streams, texts, times).Scan(&inserted)
	if err != nil {
		return interpret(err, "appending deployment logs")
	}
	if inserted == 0 {
		return ErrNotHeld
	}
	return nil
}

// ChannelLogs carries a deployment's id each time lines were appended to its log.
const ChannelLogs = "slipway_logs"

// DeploymentLogs returns up to limit lines after the line id after, oldest first: the live tail
// asks again with the last id it saw.
func (s *Store) DeploymentLogs(ctx context.Context, deploymentID, after int64, limit int) ([]LogLine, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, stream, line, created_at FROM deployment_logs
		WHERE deployment_id = $1 AND id > $2 ORDER BY id LIMIT $3`, deploymentID, after, limit)
	if err != nil {
		return nil, interpret(err, "reading deployment logs")
	}
	lines, err := pgx.CollectRows(rows, pgx.RowToStructByPos[LogLine])
	return lines, interpret(err, "reading deployment logs")
}
