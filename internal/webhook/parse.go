package webhook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v56/github"
)

// Kinds of parsed deliveries.
const (
	KindPush    = "push"
	KindPing    = "ping"
	KindIgnored = "ignored" // an event Slipway does not act on
)

// Parsed is what a delivery's body means, before any configuration is consulted.
type Parsed struct {
	Kind string
	Repo string // owner/name, canonical (lower-case), when the payload names one
	Push *Push
}

// Push is the part of a push event Slipway acts on. The payload's repository.clone_url is not
// read: what a repository is fetched from comes from the configuration only.
type Push struct {
	Repo    string
	Ref     string
	Branch  string // empty for a tag push
	Tag     string // empty for a branch push
	Before  string
	After   string
	Deleted bool
	Pusher  string
	Message string
	// PushedAt is GitHub's repository.pushed_at (unix seconds), which orders the pushes of a
	// branch; 0 when the payload has none.
	PushedAt int64
}

// ErrBadPayload marks a body that is not the event it claims to be.
var ErrBadPayload = errors.New("bad payload")

const zeroSHA = "0000000000000000000000000000000000000000"

// Parse reads a delivery body for event. It is pure (no I/O, no configuration) so it can be fuzzed.
// Events other than push and ping are not parsed at all: they are acknowledged and ignored.
func Parse(event string, body []byte) (Parsed, error) {
	switch event {
	case "push", "ping":
	default:
		return Parsed{Kind: KindIgnored}, nil
	}
	v, err := github.ParseWebHook(event, body)
	if err != nil {
		return Parsed{}, fmt.Errorf("%w: %s event: %v", ErrBadPayload, event, err)
	}
	switch e := v.(type) {
	case *github.PingEvent:
		p := Parsed{Kind: KindPing}
		if e.Repo != nil {
			p.Repo = canonical(e.Repo.GetFullName())
		}
		return p, nil
	case *github.PushEvent:
		return parsePush(e)
	}
	return Parsed{}, fmt.Errorf("%w: unexpected %s payload type %T", ErrBadPayload, event, v)
}

func parsePush(e *github.PushEvent) (Parsed, error) {
	p := &Push{
		Repo:    canonical(e.GetRepo().GetFullName()),
		Ref:     e.GetRef(),
		Before:  e.GetBefore(),
		After:   e.GetAfter(),
		Deleted: e.GetDeleted(),
		Pusher:  e.GetPusher().GetName(),
	}
	if at := e.GetRepo().GetPushedAt(); !at.IsZero() && at.Unix() > 0 {
		p.PushedAt = at.Unix()
	}
	if p.Pusher == "" {
		p.Pusher = e.GetSender().GetLogin()
	}
	if hc := e.GetHeadCommit(); hc != nil {
		p.Message = hc.GetMessage()
	}
	switch {
	case p.Repo == "":
		return Parsed{}, fmt.Errorf("%w: push event without repository.full_name", ErrBadPayload)
	case p.Ref == "":
		return Parsed{}, fmt.Errorf("%w: push event without ref", ErrBadPayload)
	case !isSHA(p.After):
		return Parsed{}, fmt.Errorf("%w: push event with invalid after %q", ErrBadPayload, truncate(p.After, 64))
	case p.Before != "" && !isSHA(p.Before):
		return Parsed{}, fmt.Errorf("%w: push event with invalid before %q", ErrBadPayload, truncate(p.Before, 64))
	}
	if p.After == zeroSHA {
		p.Deleted = true
	}
	switch {
	case strings.HasPrefix(p.Ref, "refs/heads/"):
		p.Branch = strings.TrimPrefix(p.Ref, "refs/heads/")
	case strings.HasPrefix(p.Ref, "refs/tags/"):
		p.Tag = strings.TrimPrefix(p.Ref, "refs/tags/")
	}
	return Parsed{Kind: KindPush, Repo: p.Repo, Push: p}, nil
}

// isSHA reports whether s is a full hex object id (SHA-1 or SHA-256).
func isSHA(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
