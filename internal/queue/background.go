package queue

import (
	"context"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/store"
)

// listen wakes the dispatcher on work notifications and cancels running items on cancel ones.
func (q *Queue) listen(ctx context.Context) {
	err := q.store.Listen(ctx, []string{store.ChannelWork, store.ChannelCancel}, func(channel, payload string) {
		switch channel {
		case store.ChannelWork:
			q.Wake(payload)
		case store.ChannelCancel:
			q.cancelItem(payload, ErrCancelRequested)
		case "":
			// Reconnected after an error: anything may have been missed, so look now.
			q.logger.WarnContext(ctx, "listen connection lost, reconnected", "err", payload)
			q.Wake("")
		}
	}, func() { q.listenOK.Do(func() { close(q.listening) }) })
	if err != nil && ctx.Err() == nil {
		q.logger.ErrorContext(ctx, "listening for notifications", "err", err)
	}
}

// rescueLoop takes back expired leases on a timer. Every replica runs it; the UPDATE is atomic,
// so two rescuers never take back one item twice.
func (q *Queue) rescueLoop(ctx context.Context) {
	t := time.NewTicker(q.cfg.RescueEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.RescueNow(ctx)
	}
}

// RescueNow runs one rescue pass over every kind.
func (q *Queue) RescueNow(ctx context.Context) {
	for _, k := range q.cfg.Kinds {
		rescued, err := q.store.QueueRescue(ctx, k.Name, q.cfg.BackoffBase)
		if err != nil {
			if ctx.Err() == nil {
				q.logger.ErrorContext(ctx, "rescuing expired leases", "kind", k.Name, "err", err)
			}
			continue
		}
		for _, r := range rescued {
			q.metrics.Rescued.WithLabelValues(r.Kind).Inc()
			q.logger.WarnContext(ctx, "took back item from a lost worker", "kind", r.Kind, "id", r.ID,
				"status", strings.ToLower(r.Status))
		}
		if len(rescued) > 0 {
			q.Wake(k.Name)
		}
	}
}
