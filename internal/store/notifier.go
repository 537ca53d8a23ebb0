package store

import (
	"context"
	"log/slog"
	"sync"
)

// Notifier wakes workers on every replica after work was committed. Calls in a burst coalesce
// into one NOTIFY per kind, sent in its own transaction so no data-writing commit waits on the
// notification queue's lock. A lost wake-up costs at most one poll interval.
type Notifier struct {
	st     *Store
	logger *slog.Logger

	mu      sync.Mutex
	pending map[string]bool
	kick    chan struct{}
}

// NewNotifier builds a Notifier; Run sends what Notify asks for.
func (s *Store) NewNotifier(logger *slog.Logger) *Notifier {
	return &Notifier{st: s, logger: logger, pending: map[string]bool{}, kick: make(chan struct{}, 1)}
}

// Notify asks for workers to be told that kind has new work. It never blocks.
func (n *Notifier) Notify(kind string) {
	n.mu.Lock()
	n.pending[kind] = true
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Run sends notifications until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		}
		n.mu.Lock()
		kinds := n.pending
		n.pending = map[string]bool{}
		n.mu.Unlock()
		for kind := range kinds {
			if _, err := n.st.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, ChannelWork, kind); err != nil && ctx.Err() == nil {
				n.logger.WarnContext(ctx, "notifying workers (they will poll)", "kind", kind, "err", err)
			}
		}
	}
}
