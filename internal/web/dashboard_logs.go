package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/internal/auth"
	"github.com/slipway-dev/slipway/internal/store"
)

// A deployment's log, live: the page draws the last lines, then app.js follows new ones over
// server-sent events. Each event's id is the line's id, so a reconnecting browser (Last-Event-ID)
// goes on after the last line it got: no line lost, none twice. The log is read a page at a time,
// whatever its size. One LISTEN per replica wakes the streams of the deployment that logged.

// ssePage is how many lines a stream reads from the database at once (at most 16 KiB each).
const ssePage = 500

// listener is the store's LISTEN loop.
type listener interface {
	Listen(ctx context.Context, channels []string, fn func(channel, payload string), ready func()) error
}

// logHub fans the database's log notifications out to the streams in this process.
type logHub struct {
	st     listener
	logger *slog.Logger

	mu    sync.Mutex
	subs  map[int64]map[chan struct{}]struct{}
	ready chan struct{} // closed once the first LISTEN took effect
	once  sync.Once
}

func newLogHub(st listener, logger *slog.Logger) *logHub {
	return &logHub{st: st, logger: logger, subs: map[int64]map[chan struct{}]struct{}{}, ready: make(chan struct{})}
}

// subscribe returns a channel that receives (coalesced) when deployment id logged, and the
// function that ends the subscription.
func (h *logHub) subscribe(id int64) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.subs[id] == nil {
		h.subs[id] = map[chan struct{}]struct{}{}
	}
	h.subs[id][ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		delete(h.subs[id], ch)
		if len(h.subs[id]) == 0 {
			delete(h.subs, id)
		}
		h.mu.Unlock()
	}
}

func (h *logHub) wake(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs[id] {
		notify(ch)
	}
}

// wakeAll wakes every stream: after (re)connecting, a notification may have been missed.
func (h *logHub) wakeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		for ch := range s {
			notify(ch)
		}
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// run listens for new log lines (store.ChannelLogs, payload the deployment's id), for finished
// deployments (store.ChannelWork "deployment": a tail must end) and for cancels.
func (h *logHub) run(ctx context.Context) error {
	channels := []string{store.ChannelLogs, store.ChannelWork, store.ChannelCancel}
	return h.st.Listen(ctx, channels, func(channel, payload string) {
		switch channel {
		case "":
			h.logger.WarnContext(ctx, "log notifications interrupted (live tails poll meanwhile)", "err", payload)
		case store.ChannelLogs:
			if id, err := strconv.ParseInt(payload, 10, 64); err == nil {
				h.wake(id)
			}
		case store.ChannelCancel:
			if id, err := strconv.ParseInt(strings.TrimPrefix(payload, store.KindDeployment+":"), 10, 64); err == nil {
				h.wake(id)
			}
		case store.ChannelWork:
			// A deployment finished (or was released): the payload does not say which, and the
			// streams' status reads are one index lookup each.
			if payload == store.KindDeployment {
				h.wakeAll()
			}
		}
	}, func() {
		h.wakeAll()
		h.once.Do(func() { close(h.ready) })
	})
}

// lineEvent is one log line as a stream sends it.
type lineEvent struct {
	Stream string `json:"s"`
	Line   string `json:"l"`
	At     string `json:"t"`
}

// logStream serves /deployments/{id}/logs/stream: the lines after Last-Event-ID (or ?after=),
// then new ones as they come, then "event: end" once the deployment is final.
func (d *Dashboard) logStream(w http.ResponseWriter, r *http.Request) {
	id, ok := d.allowedID(w, r, auth.RoleViewer)
	if !ok {
		return
	}
	from := r.Header.Get("Last-Event-ID")
	if from == "" {
		from = r.URL.Query().Get("after")
	}
	var after int64
	if from != "" {
		a, err := strconv.ParseInt(from, 10, 64)
		if err != nil || a < 0 {
			d.fail(w, r, http.StatusBadRequest, "The position to resume from must be a log line id.")
			return
		}
		after = a
	}
	ctx := r.Context()
	if _, err := d.st.DeploymentStatus(ctx, id); err != nil {
		d.failErr(w, r, err)
		return
	}
	// Subscribe before the first read: a line logged in between wakes the loop.
	wake, unsubscribe := d.hub.subscribe(id)
	defer unsubscribe()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	poll, beat := time.NewTicker(d.poll), time.NewTicker(d.beat)
	defer poll.Stop()
	defer beat.Stop()
	stop := time.NewTimer(d.maxLive)
	defer stop.Stop()
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	for {
		// The status is read before the lines: a deployment final by then has logged all it will.
		status, err := d.st.DeploymentStatus(ctx, id)
		if err != nil {
			d.streamErr(ctx, id, err)
			return
		}
		for {
			lines, err := d.st.DeploymentLogs(ctx, id, after, ssePage)
			if err != nil {
				d.streamErr(ctx, id, err)
				return
			}
			for _, l := range lines {
				data, _ := json.Marshal(lineEvent{Stream: l.Stream, Line: l.Line, At: l.CreatedAt.UTC().Format("15:04:05.000")})
				if _, err := fmt.Fprintf(w, "id: %d\ndata: %s\n\n", l.ID, data); err != nil {
					return
				}
				after = l.ID
			}
			if err := rc.Flush(); err != nil {
				return
			}
			if len(lines) < ssePage {
				break
			}
		}
		if status.Final() {
			fmt.Fprintf(w, "event: end\ndata: %s\n\n", status)
			_ = rc.Flush()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-stop.C:
			return // the browser reconnects with the last id it got
		case <-wake:
		case <-poll.C:
		case <-beat.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		}
	}
}

func (d *Dashboard) streamErr(ctx context.Context, id int64, err error) {
	if ctx.Err() == nil {
		d.logger.ErrorContext(ctx, "streaming deployment log", "deployment_id", id, "err", err)
	}
}

// logText serves a deployment's whole log as plain text, read a page at a time.
func (d *Dashboard) logText(w http.ResponseWriter, r *http.Request) {
	id, ok := d.allowedID(w, r, auth.RoleViewer)
	if !ok {
		return
	}
	ctx := r.Context()
	if _, err := d.st.DeploymentStatus(ctx, id); err != nil {
		d.failErr(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Disposition", fmt.Sprintf(`inline; filename="deployment-%d.log"`, id))
	var after int64
	for {
		lines, err := d.st.DeploymentLogs(ctx, id, after, 1000)
		if err != nil {
			d.streamErr(ctx, id, err)
			return
		}
		for _, l := range lines {
			if _, err := fmt.Fprintf(w, "%s %s %s\n", l.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"), l.Stream, l.Line); err != nil {
				return
			}
			after = l.ID
		}
		if len(lines) < 1000 {
			return
		}
	}
}
