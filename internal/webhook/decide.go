package webhook

import (
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/store"
)

// Outcomes recorded for a delivery.
const (
	OutcomeQueued  = "queued"
	OutcomeIgnored = "ignored"
	OutcomePing    = "ping"
	// OutcomeStale is recorded, in place of queued, for a push not newer than one already received
	// for its branch (a replay, or a delivery overtaken by a later push): it queues nothing.
	OutcomeStale = store.OutcomeStale
)

// Repositories answers whether a push to repo's branch may deploy, and where it is cloned from.
type Repositories interface {
	// MatchPush returns the configured clone URL of repo or a reason the push is ignored. The
	// payload's clone URL is never used.
	MatchPush(repo, branch string) (cloneURL, reason string, ok bool)
}

// canonical is how repository names are compared and stored: GitHub's are case-insensitive, so
// ACME/x and acme/x are one repository (config.Canonical does the same to configured names).
func canonical(name string) string { return strings.ToLower(name) }

// Decision is what Slipway does with a parsed delivery.
type Decision struct {
	Outcome string
	Reason  string
	Run     *deploy.Run // set when Outcome is queued
}

// Decide turns a parsed delivery into a decision. It is pure, like Parse.
func Decide(p Parsed, repos Repositories) Decision {
	switch p.Kind {
	case KindPing:
		return Decision{Outcome: OutcomePing, Reason: "pong"}
	case KindIgnored:
		return Decision{Outcome: OutcomeIgnored, Reason: "event not handled"}
	}
	push := p.Push
	switch {
	case push.Deleted:
		return Decision{Outcome: OutcomeIgnored, Reason: "branch or tag deleted"}
	case push.Tag != "":
		return Decision{Outcome: OutcomeIgnored, Reason: "tag push"}
	case push.Branch == "":
		return Decision{Outcome: OutcomeIgnored, Reason: "ref is not a branch"}
	}
	cloneURL, reason, ok := repos.MatchPush(push.Repo, push.Branch)
	if !ok {
		return Decision{Outcome: OutcomeIgnored, Reason: reason}
	}
	return Decision{Outcome: OutcomeQueued, Run: &deploy.Run{
		Trigger:   "push",
		Repo:      push.Repo,
		Ref:       push.Ref,
		Branch:    push.Branch,
		BeforeSHA: push.Before,
		AfterSHA:  push.After,
		CloneURL:  cloneURL,
		Pusher:    push.Pusher,
		Message:   push.Message,
	}}
}
