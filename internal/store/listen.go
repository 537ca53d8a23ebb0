package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen holds one connection that LISTENs on channels and calls fn for each notification until
// ctx ends. A broken connection is re-established after a pause; fn is then called with channel ""
// and the error as payload, so the caller can log it and poll for notifications it missed.
// ready, if not nil, is called each time the LISTEN statements have taken effect.
func (s *Store) Listen(ctx context.Context, channels []string, fn func(channel, payload string), ready func()) error {
	for {
		err := s.listenOnce(ctx, channels, fn, ready)
		if ctx.Err() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
		fn("", err.Error())
	}
}

func (s *Store) listenOnce(ctx context.Context, channels []string, fn func(channel, payload string), ready func()) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring listen connection: %w", err)
	}
	// A LISTEN session's state must not go back to the pool for reuse.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(ctx))
	for _, ch := range channels {
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listening on %s: %w", ch, err)
		}
	}
	if ready != nil {
		ready()
	}
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("waiting for notification: %w", err)
		}
		fn(n.Channel, n.Payload)
	}
}
