package queue

import (
	"sync"
	"time"
)

// lease is a worker's own view of its lease on an item. The database expires a lease at the time
// of its last renewal plus its length; the worker counts from when it *sent* that renewal, which
// is no later, and stops acting once two thirds of the length have passed without a renewal. The
// last third is the margin within which no rescuer can have taken the item over yet.
type lease struct {
	length time.Duration

	mu      sync.Mutex
	renewed time.Time // when the last successful renewal (or the claim) was sent
	lost    bool
}

func newLease(length time.Duration, claimSent time.Time) *lease {
	return &lease{length: length, renewed: claimSent}
}

// usable is how long after a renewal the worker may still act.
func (l *lease) usable() time.Duration { return l.length * 2 / 3 }

// held is nil while the worker may act. time.Since uses the monotonic clock, which keeps counting
// while the process is stopped (SIGSTOP): a worker resumed past its lease sees it at once.
func (l *lease) held() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost || time.Since(l.renewed) > l.usable() {
		l.lost = true
		return errLeaseLost
	}
	return nil
}

// renew records a successful renewal sent at sent, unless the lease was given up already.
func (l *lease) renew(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lost && sent.After(l.renewed) {
		l.renewed = sent
	}
}

// giveUp marks the lease lost for good.
func (l *lease) giveUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost = true
}

// expires is when the worker must stop acting, unless a renewal comes first.
func (l *lease) expires() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.renewed.Add(l.usable())
}
