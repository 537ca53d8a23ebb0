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

// DeploymentLogsAppend stores lines in one round trip.
func (s *Store) DeploymentLogsAppend(ctx context.Context, deploymentID int64, lines []LogLine) error {
	if len(lines) == 0 {
		return nil
	}
	streams := make([]string, len(lines))
	texts := make([]string, len(lines))
	times := make([]time.Time, len(lines))
	for i, l := range lines {
		streams[i], texts[i], times[i] = l.Stream, l.Line, l.CreatedAt
	}
	_, err := s.pool.Exec(ctx, `
		INSERT INTO deployment_logs (deployment_id, stream, line, created_at)
		SELECT $1, s, l, t FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS u(s, l, t)`,
		deploymentID, streams, texts, times)
	return interpret(err, "appending deployment logs")
}

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
