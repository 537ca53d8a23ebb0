package webhook

import (
	"github.com/slipway-dev/slipway/internal/deploy"
)

// Outcomes recorded for a delivery.
const (
	OutcomeQueued  = "queued"
	OutcomeIgnored = "ignored"
	OutcomePing    = "ping"
)

// Repositories answers whether a push to repo's branch may deploy, and where to clone it from.
type Repositories interface {
	// MatchPush returns the clone URL to use (empty: the payload's) or a reason the push is ignored.
	MatchPush(repo, branch string) (cloneURL, reason string, ok bool)
}

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
	if cloneURL == "" {
		cloneURL = push.CloneURL
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
