package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/slipway-dev/slipway/internal/store"
)

// LogStore appends deployment log lines.
type LogStore interface {
	DeploymentLogsAppend(ctx context.Context, c store.Claim, lines []store.LogLine) error
}

// Limits of what one deployment may write to its log table.
const (
	maxLogLine  = 16 << 10
	maxLogLines = 50_000
	logFlush    = 200 * time.Millisecond
)

// logWriter streams a deployment's output to the database: lines are written within logFlush of
// being produced (the dashboard tails them live), batched so a chatty build costs few round trips.
type logWriter struct {
	st     LogStore
	claim  store.Claim
	logger *slog.Logger
	// refused is called once when the database refuses a write: the claim was lost, and every
	// line from then on is dropped.
	refused func()
	lost    bool

	mu      sync.Mutex
	pending []store.LogLine
	written int
	dropped int
	kick    chan struct{}
	done    chan struct{}
	stopped chan struct{}
}

func newLogWriter(st LogStore, c store.Claim, refused func(), logger *slog.Logger) *logWriter {
	w := &logWriter{st: st, claim: c, refused: refused, logger: logger,
		kick: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go w.loop()
	return w
}

// Log is the LogFunc handed to builders, registries and targets.
func (w *logWriter) Log(stream, line string) {
	line = cleanLine(line)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.written+len(w.pending) >= maxLogLines {
		w.dropped++
		return
	}
	w.pending = append(w.pending, store.LogLine{Stream: stream, Line: line, CreatedAt: time.Now()})
	if len(w.pending) >= 500 {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// Logf writes a "system" line: Slipway's own account of what it is doing.
func (w *logWriter) Logf(format string, args ...any) { w.Log("system", fmt.Sprintf(format, args...)) }

func (w *logWriter) loop() {
	defer close(w.stopped)
	t := time.NewTicker(logFlush)
	defer t.Stop()
	for {
		select {
		case <-w.done:
			w.flush()
			return
		case <-t.C:
		case <-w.kick:
		}
		w.flush()
	}
}

func (w *logWriter) flush() {
	w.mu.Lock()
	lines := w.pending
	w.pending = nil
	w.written += len(lines)
	lost := w.lost
	w.mu.Unlock()
	if len(lines) == 0 || lost {
		return
	}
	// Logs must land even when the deployment's context was just cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.st.DeploymentLogsAppend(ctx, w.claim, lines)
	switch {
	case errors.Is(err, store.ErrNotHeld):
		w.mu.Lock()
		w.lost = true
		w.mu.Unlock()
		if w.refused != nil {
			w.refused()
		}
	case err != nil:
		w.logger.Warn("writing deployment logs", "deployment_id", w.claim.ID, "lines", len(lines), "err", err)
	}
}

// Close flushes what is left and stops the writer.
func (w *logWriter) Close() {
	w.mu.Lock()
	dropped := w.dropped
	w.mu.Unlock()
	if dropped > 0 {
		w.mu.Lock()
		w.pending = append(w.pending, store.LogLine{Stream: "system", CreatedAt: time.Now(),
			Line: fmt.Sprintf("log limit of %d lines reached: %d more lines were dropped", maxLogLines, dropped)})
		w.mu.Unlock()
	}
	close(w.done)
	<-w.stopped
}

// cleanLine makes a line storable and bounded: valid UTF-8, no NUL (PostgreSQL text refuses it),
// at most maxLogLine bytes.
func cleanLine(s string) string {
	s = strings.TrimRight(s, "\r\n")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	}
	if len(s) > maxLogLine {
		n := len(s)
		cut := maxLogLine
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = fmt.Sprintf("%s… [line truncated, %d bytes]", s[:cut], n)
	}
	return s
}
