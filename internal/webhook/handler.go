// Package webhook serves POST /webhooks/github: it checks the signature, parses the delivery,
// and records it, with the run it queues, in one statement. Nothing slow happens here.
package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-github/v56/github"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/metrics"
	"github.com/slipway-dev/slipway/internal/store"
)

// Store records deliveries; *store.Store implements it.
type Store interface {
	WebhookIngest(ctx context.Context, d store.Delivery, run *deploy.Run) (store.Delivery, bool, error)
}

// Config configures the handler.
type Config struct {
	// Secrets sign every delivery when Keys is nil; any of them may, so secrets can be rotated.
	Secrets [][]byte
	// Keys, when set, returns the secrets that may sign a delivery about subject: a repository
	// (owner/name, canonical), or an organisation's login when the delivery names no repository
	// (config.Config.WebhookSecrets: the repository's own, else its organisation's, else the
	// global ones). Secrets is then not used.
	Keys    func(subject string) [][]byte
	MaxBody int64 // default 25 MiB
	Repos   Repositories
	Timeout time.Duration // database time budget per delivery (default 5s)
	// Notify wakes the workers once a queued run is committed; nil leaves it to their poll.
	Notify func(kind string)
}

// Handler serves GitHub deliveries.
type Handler struct {
	cfg     Config
	store   Store
	metrics *metrics.Metrics
	logger  *slog.Logger
}

// NewHandler builds a Handler.
func NewHandler(cfg Config, st Store, m *metrics.Metrics, logger *slog.Logger) (*Handler, error) {
	if len(cfg.Secrets) == 0 && cfg.Keys == nil {
		return nil, errors.New("webhook: at least one secret is required")
	}
	cfg.MaxBody = cmp.Or(cfg.MaxBody, 25<<20)
	cfg.Timeout = cmp.Or(cfg.Timeout, 5*time.Second)
	return &Handler{cfg: cfg, store: st, metrics: m, logger: logger}, nil
}

// Response is the JSON body of every answer.
type Response struct {
	DeliveryID string `json:"delivery_id,omitempty"`
	Outcome    string `json:"outcome,omitempty"`
	Reason     string `json:"reason,omitempty"`
	RunID      int64  `json:"run_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// known events get their own metric label; anything else is counted as "other".
var knownEvents = map[string]bool{"push": true, "ping": true, "create": true, "delete": true,
	"pull_request": true, "release": true, "workflow_run": true, "check_suite": true, "status": true}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { h.metrics.WebhookDuration.Observe(time.Since(start).Seconds()) }()
	ctx := r.Context()
	event := r.Header.Get("X-GitHub-Event")
	delivery := r.Header.Get("X-GitHub-Delivery")
	label := event
	if !knownEvents[label] {
		label = "other"
	}
	reject := func(code int, outcome, msg string) {
		h.metrics.WebhookDeliveries.WithLabelValues(label, outcome).Inc()
		h.logger.InfoContext(ctx, "webhook rejected", "status", code, "reason", msg, "delivery", truncate(delivery, 64))
		writeJSON(w, code, Response{DeliveryID: truncate(delivery, 64), Error: msg})
	}

	if r.ContentLength > h.cfg.MaxBody {
		reject(http.StatusRequestEntityTooLarge, "too_large", "body exceeds "+strconv.FormatInt(h.cfg.MaxBody, 10)+" bytes")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			reject(http.StatusRequestEntityTooLarge, "too_large", "body exceeds "+strconv.FormatInt(h.cfg.MaxBody, 10)+" bytes")
			return
		}
		reject(http.StatusBadRequest, "bad_request", "reading body: "+err.Error())
		return
	}
	signature := r.Header.Get("X-Hub-Signature-256")
	if signature == "" {
		reject(http.StatusUnauthorized, "bad_signature", "missing X-Hub-Signature-256")
		return
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mediaType != "application/json" && mediaType != "application/x-www-form-urlencoded" {
		reject(http.StatusBadRequest, "bad_request", "unsupported Content-Type")
		return
	}
	// Whose secrets may sign it depends on what the body is about, read before the signature is
	// checked: the name only picks the secrets, and must be what Parse finds once one verified.
	subject := subjectOf(mediaType, body)
	payload, err := h.validate(mediaType, body, signature, h.secrets(subject))
	var bad *badBody
	switch {
	case errors.As(err, &bad):
		reject(http.StatusBadRequest, "bad_request", bad.Error())
		return
	case err != nil:
		reject(http.StatusUnauthorized, "bad_signature", "signature does not match")
		return
	}
	if event == "" || delivery == "" || len(delivery) > 200 {
		reject(http.StatusBadRequest, "bad_request", "missing or invalid X-GitHub-Event or X-GitHub-Delivery")
		return
	}
	for _, name := range []string{"X-GitHub-Event", "X-GitHub-Delivery"} {
		if !intact(r.Header.Get(name)) {
			reject(http.StatusBadRequest, "bad_request", name+" must be UTF-8 text without control characters")
			return
		}
	}
	parsed, err := Parse(event, payload)
	if err == nil {
		parsed, err = storable(parsed)
	}
	if err != nil {
		reject(http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if parsed.Repo != "" && parsed.Repo != subject {
		reject(http.StatusUnauthorized, "bad_signature", "signature does not cover the repository the payload names")
		return
	}
	dec := Decide(parsed, h.cfg.Repos)
	rec := store.Delivery{ID: delivery, Event: event, Repo: parsed.Repo, Outcome: dec.Outcome, Reason: dec.Reason,
		StatusCode: http.StatusOK}
	if parsed.Push != nil {
		rec.Ref = parsed.Push.Ref
		rec.PushedAt = parsed.Push.PushedAt
	}
	if dec.Run != nil {
		rec.StatusCode = http.StatusAccepted
	}
	dbctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	stored, inserted, err := h.store.WebhookIngest(dbctx, rec, dec.Run)
	if err != nil {
		// 503 makes GitHub's redelivery worth trying. It is safe even when the delivery did
		// commit (a deadline can fire after the commit): the redelivery gets the stored answer.
		// Only an error known to precede any commit may say that nothing was recorded.
		msg := "delivery may have been recorded; redelivering it is safe"
		if errors.Is(err, store.ErrNotRecorded) {
			msg = "delivery not recorded, try again"
		}
		h.logger.ErrorContext(ctx, "recording webhook delivery", "delivery", delivery, "err", err)
		h.metrics.WebhookDeliveries.WithLabelValues(label, "error").Inc()
		writeJSON(w, http.StatusServiceUnavailable, Response{DeliveryID: delivery, Error: msg})
		return
	}
	outcome := stored.Outcome
	if !inserted {
		outcome = "duplicate"
		w.Header().Set("X-Slipway-Redelivery", "true")
	}
	h.metrics.WebhookDeliveries.WithLabelValues(label, outcome).Inc()
	if inserted && stored.RunID != 0 {
		if h.cfg.Notify != nil {
			h.cfg.Notify(store.KindRun)
		}
		h.logger.InfoContext(ctx, "run queued", "delivery", delivery, "run_id", stored.RunID,
			"repo", rec.Repo, "branch", dec.Run.Branch, "sha", dec.Run.AfterSHA)
	}
	if inserted && stored.Outcome == OutcomeStale {
		h.logger.InfoContext(ctx, "stale push recorded, not queued", "delivery", delivery,
			"repo", rec.Repo, "branch", dec.Run.Branch, "sha", dec.Run.AfterSHA, "pushed_at", rec.PushedAt)
	}
	writeJSON(w, stored.StatusCode, Response{DeliveryID: stored.ID, Outcome: stored.Outcome, Reason: stored.Reason, RunID: stored.RunID})
}

// storable checks and cleans what the payload gives PostgreSQL, which refuses NUL bytes and
// invalid UTF-8 in text. Names must arrive intact, or the push would be matched, cloned and
// reported under a name that is not GitHub's, so they are refused; free text keeps U+FFFD in
// place of what cannot be stored.
func storable(p Parsed) (Parsed, error) {
	if !intact(p.Repo) {
		return Parsed{}, fmt.Errorf("%w: repository.full_name must be UTF-8 text without control characters", ErrBadPayload)
	}
	if p.Push == nil {
		return p, nil
	}
	push := *p.Push
	switch {
	case !intact(push.Ref):
		return Parsed{}, fmt.Errorf("%w: ref must be UTF-8 text without control characters", ErrBadPayload)
	}
	push.Pusher, push.Message = scrub(push.Pusher), scrub(push.Message)
	p.Push = &push
	return p, nil
}

// intact reports whether s holds only UTF-8 text without control characters. U+FFFD counts as
// invalid: ranging over bad bytes yields it, and it is what the JSON decoder leaves in their place.
func intact(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// scrub makes free text storable: NUL and invalid UTF-8 become U+FFFD.
func scrub(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// secrets returns the secrets that may sign a delivery about subject.
func (h *Handler) secrets(subject string) [][]byte {
	if h.cfg.Keys == nil {
		return h.cfg.Secrets
	}
	return h.cfg.Keys(subject)
}

// subjectOf names what a body is about, to pick the secrets that may sign it: its repository
// (owner/name, canonical), else its organisation's login, else "". The body is not authenticated
// yet: the answer only chooses whose signature to check, and a body it cannot read gets ""
// (the global secrets), for Parse to refuse once it is signed.
func subjectOf(mediaType string, body []byte) string {
	if mediaType == "application/x-www-form-urlencoded" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return ""
		}
		body = []byte(form.Get("payload"))
	}
	var v struct {
		Repository struct {
			FullName string `json:"full_name"`
		} `json:"repository"`
		Organization struct {
			Login string `json:"login"`
		} `json:"organization"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	if v.Repository.FullName != "" {
		return canonical(v.Repository.FullName)
	}
	return canonical(v.Organization.Login)
}

// badBody is a signed body that is not what its Content-Type says: the sender holds a secret, so
// it gets 400 and the reason, not 401.
type badBody struct{ msg string }

func (e *badBody) Error() string { return e.msg }

// validate checks the signature of the raw body against each of secrets with go-github's
// validator, then returns the JSON payload (unwrapped from a form body if need be).
func (h *Handler) validate(mediaType string, body []byte, signature string, secrets [][]byte) ([]byte, error) {
	err := errors.New("no secret may sign this delivery")
	for _, secret := range secrets {
		if err = github.ValidateSignature(signature, body, secret); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if mediaType != "application/x-www-form-urlencoded" {
		return body, nil
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, &badBody{"form body does not decode: " + err.Error()}
	}
	return []byte(form.Get("payload")), nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
