package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/store"
)

// FinishError ends an item with a chosen final status (e.g. "skipped", "rolled_back").
type FinishError struct {
	Status string
	Err    error // may be nil
}

func (e *FinishError) Error() string {
	if e.Err == nil {
		return "finished as " + e.Status
	}
	return e.Err.Error()
}

func (e *FinishError) Unwrap() error { return e.Err }

// Finish ends the item with status; err, if any, is recorded as its error.
func Finish(status string, err error) error { return &FinishError{Status: status, Err: err} }

// Permanent fails the item without retrying: retrying cannot help (a bad pipeline file, a build error).
func Permanent(err error) error { return Finish("failed", err) }

// start registers a claimed item as running (so the dispatcher counts it at once) and runs it in
// its own goroutine.
func (q *Queue) start(parent context.Context, job Job, workers *sync.WaitGroup) {
	// The job outlives the parent's cancellation (shutdown) until the grace period ends.
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	key := itemKey(job.Kind, job.ID)
	job.wait = func() func() {
		q.setWaiting(key, true)
		return sync.OnceFunc(func() { q.setWaiting(key, false) })
	}
	q.mu.Lock()
	q.running[key] = &running{job: job, cancel: cancel}
	q.mu.Unlock()
	workers.Add(1)
	go func() {
		defer workers.Done()
		defer func() {
			q.mu.Lock()
			delete(q.running, key)
			q.mu.Unlock()
			signal(q.freed)
		}()
		defer cancel(nil)
		q.work(parent, ctx, cancel, job)
	}()
}

// work runs one claimed item: handler, heartbeat, and the status it ends with.
func (q *Queue) work(parent, ctx context.Context, cancel context.CancelCauseFunc, job Job) {
	busy := q.metrics.WorkersBusy.WithLabelValues(job.Kind)
	busy.Inc()
	defer busy.Dec()
	started := time.Now()
	logger := q.logger.With("kind", job.Kind, "id", job.ID, "attempt", job.Attempt)
	logger.DebugContext(ctx, "item claimed")

	hbDone := make(chan struct{})
	go func() { defer close(hbDone); q.heartbeat(ctx, job, cancel) }()
	err := q.runHandler(ctx, job)
	cause := context.Cause(ctx)
	cancel(nil)
	<-hbDone
	q.metrics.JobDuration.WithLabelValues(job.Kind).Observe(time.Since(started).Seconds())

	// Writes after the handler must happen even though ctx is cancelled now.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
	defer wcancel()
	status, err := q.settle(wctx, job, err, cause)
	if err != nil {
		logger.ErrorContext(wctx, "recording item outcome", "err", err)
		return
	}
	if status != "" {
		q.metrics.JobsFinished.WithLabelValues(job.Kind, status).Inc()
		logger.InfoContext(wctx, "item settled", "status", status, "duration", time.Since(started).Round(time.Millisecond))
	}
}

// runHandler calls the kind's handler, turning a panic into an error so one bad item cannot take
// the replica down.
func (q *Queue) runHandler(ctx context.Context, job Job) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return q.kinds[job.Kind].Handler(ctx, job)
}

// settle writes what the handler's result means. It returns the status written, "" if none.
func (q *Queue) settle(ctx context.Context, job Job, herr, cause error) (string, error) {
	switch {
	case errors.Is(cause, errLeaseLost), errors.Is(herr, store.ErrNotHeld):
		// Whoever took the item over owns its record now: write nothing.
		q.metrics.LeasesLost.WithLabelValues(job.Kind).Inc()
		return "", nil
	case errors.Is(cause, errShutdown):
		return "", q.refused(job, "release", q.store.QueueRelease(ctx, job.Claim))
	case errors.Is(cause, ErrCancelRequested):
		return q.finish(ctx, job, "cancelled", "cancelled on request")
	}
	var fe *FinishError
	switch {
	case herr == nil:
		return q.finish(ctx, job, q.kinds[job.Kind].DoneStatus, "")
	case errors.As(herr, &fe):
		msg := ""
		if fe.Err != nil {
			msg = fe.Err.Error()
		}
		return q.finish(ctx, job, fe.Status, msg)
	default:
		delay := q.cfg.BackoffBase * time.Duration(1<<min(job.Attempt-1, 6))
		status, err := q.store.QueueRetry(ctx, job.Claim, herr.Error(), delay)
		if err == nil && status == "queued" {
			q.logger.WarnContext(ctx, "item failed, will retry", "kind", job.Kind, "id", job.ID, "err", herr, "delay", delay)
		}
		return status, q.refused(job, "retry", err)
	}
}

func (q *Queue) finish(ctx context.Context, job Job, status, msg string) (string, error) {
	if err := q.store.QueueFinish(ctx, job.Claim, status, msg); err != nil {
		return "", q.refused(job, "finish", err)
	}
	return status, nil
}

// refused counts a write the database refused for want of the claim, which is not an error: the
// item is someone else's now.
func (q *Queue) refused(job Job, write string, err error) error {
	if errors.Is(err, store.ErrNotHeld) {
		job.Refused(write)
		q.logger.Warn("write refused: lease lost", "kind", job.Kind, "id", job.ID, "attempt", job.Attempt, "write", write)
		return nil
	}
	return err
}

// heartbeat renews the lease until ctx ends. It cancels the job when the lease is lost, when it
// could not be renewed for two thirds of its length (so the worker stops well before a rescuer can
// take the item over), or when a cancel was requested (the fallback for a lost NOTIFY).
func (q *Queue) heartbeat(ctx context.Context, job Job, cancel context.CancelCauseFunc) {
	every := q.cfg.Lease / 3
	t := time.NewTicker(every)
	defer t.Stop()
	deadline := time.NewTimer(time.Until(job.lease.expires()))
	defer deadline.Stop()
	lost := func(why string) {
		job.lease.giveUp()
		cancel(errLeaseLost)
		q.logger.WarnContext(ctx, "stopping item: "+why, "kind", job.Kind, "id", job.ID, "attempt", job.Attempt)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			if job.lease.held() != nil {
				lost("lease not renewed in time")
				return
			}
			deadline.Reset(time.Until(job.lease.expires()))
			continue
		case <-t.C:
		}
		sent := time.Now()
		hctx, hcancel := context.WithTimeout(ctx, every)
		cancelReq, err := q.store.QueueHeartbeat(hctx, job.Claim, q.cfg.Lease)
		hcancel()
		switch {
		case errors.Is(err, store.ErrNotHeld):
			lost("lease taken over")
			return
		case err != nil:
			if ctx.Err() == nil {
				q.logger.WarnContext(ctx, "renewing lease", "kind", job.Kind, "id", job.ID, "err", err)
			}
			continue
		}
		job.lease.renew(sent)
		if !deadline.Stop() {
			select {
			case <-deadline.C:
			default:
			}
		}
		deadline.Reset(time.Until(job.lease.expires()))
		if cancelReq {
			cancel(ErrCancelRequested)
		}
	}
}
