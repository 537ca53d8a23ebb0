package source

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockFile sits inside the mirror directory; git ignores unknown files there.
const lockFile = "slipway.lock"

// lockMirror serializes writers of one mirror: first among goroutines of this
// process (a one-slot channel, so waiting honours ctx), then among processes
// sharing the cache (flock on a file in the mirror). The returned func
// releases both; the file is returned so git can inherit it. Waiting for
// either lock counts against ctx.
func (c *Cache) lockMirror(ctx context.Context, dir string) (lock *os.File, unlock func(), err error) {
	sem := c.semaphore(dir)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, fmt.Errorf("waiting for mirror lock: %w", ctx.Err())
	}
	release := func() { <-sem }

	if err := os.MkdirAll(dir, 0o750); err != nil {
		release()
		return nil, nil, fmt.Errorf("creating mirror dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("opening mirror lock: %w", err)
	}
	if err := flock(ctx, f); err != nil {
		f.Close()
		release()
		return nil, nil, err
	}
	return f, func() {
		// The flock goes once this and every inherited descriptor is closed.
		f.Close()
		release()
	}, nil
}

func (c *Cache) semaphore(dir string) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	sem, ok := c.locks[dir]
	if !ok {
		sem = make(chan struct{}, 1)
		c.locks[dir] = sem
	}
	return sem
}

// flock takes an exclusive lock on f. A blocking flock cannot be cancelled,
// so it polls with a non-blocking one and backs off up to half a second.
func flock(ctx context.Context, f *os.File) error {
	wait := 10 * time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("locking mirror: %w", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("waiting for mirror lock held by another process: %w", ctx.Err())
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
