package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/slipway-dev/slipway/internal/queue"
	"github.com/slipway-dev/slipway/internal/store"
)

// TEMPORARY until internal/deploy's planner lands.
func planRun(st *store.Store, logger *slog.Logger) queue.Handler {
	return func(ctx context.Context, job queue.Job) error {
		return queue.Finish("skipped", errors.New("planning not implemented yet"))
	}
}
