package ecs

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// end is how a deployment ended, as far as ECS says.
type end int

const (
	ongoing    end = iota // not over
	succeeded             // the revision followed is live and steady
	rolledBack            // ECS put the revision from before back (its circuit breaker, or alarms)
	failed                // ECS ended the deployment and put nothing back: Slipway may
	stuck                 // ECS's own rollback failed: the service needs a person
)

type verdict struct {
	end    end
	reason string
}

const (
	// readFailures is how many reads of the service in a row may fail, each after the SDK's own
	// retries, before Slipway stops following the deployment and rolls it back.
	readFailures = 3
	// finds bounds the ListServiceDeployments calls that look for a deployment's service
	// deployment when UpdateService did not name it.
	finds = 3
	// sameDeployment is how far apart ECS may stamp a deployment and its service deployment.
	sameDeployment = 5 * time.Second
)

// watch follows one deployment of one task definition to the end ECS gives it. ECS's service
// deployment (DescribeServiceDeployments) is the verdict when ECS offers it; otherwise the
// service's deployments[].rolloutState, or, for a service whose deployments do not name the task
// definition at all (emulators), the service's own steadiness as the SDK's services-stable waiter
// judges it.
type watch struct {
	u        *update
	arn      string    // the task definition rolled out
	id       string    // its ECS deployment, "" when the service lists none of it
	created  time.Time // when ECS created that deployment, by ECS's clock
	sd       string    // its service deployment's ARN, "" while unknown
	sdBefore string    // the service's current service deployment before the update
	noSD     bool      // the service-deployment API did not answer: rolloutState decides
	finds    int       // ListServiceDeployments calls made looking for sd
	sdStatus ecstypes.ServiceDeploymentStatus
	rollback string // the deployment ECS's circuit breaker started to put the old revision back
	reason   string // why ECS failed the deployment, once it did
	last     ecstypes.Service
	progress *progress
}

// watch starts following the deployment of arn that the update of before started; after is the
// service as UpdateService returned it.
func (u *update) watch(before, after ecstypes.Service, arn string) *watch {
	w := &watch{u: u, arn: arn, sdBefore: aws.ToString(before.CurrentServiceDeployment), last: after, progress: newProgress(u, before)}
	d := newest(after, arn)
	if d == nil {
		say(u.log, "ECS lists no deployment of %s for ECS service %s: following the service until it is steady on it", short(arn), u.p)
	} else {
		w.id, w.created = aws.ToString(d.Id), aws.ToTime(d.CreatedAt)
		// UpdateService names the service deployment it started. With no new deployment (the
		// service ran arn already), the current one is still the one to follow.
		cur := aws.ToString(after.CurrentServiceDeployment)
		if cur != "" && (cur != w.sdBefore || deployment(before, w.id) != nil) {
			w.sd = cur
		}
	}
	w.progress.service(after)
	return w
}

// follow reads the service with backoff until the deployment is over or ctx ends; then the error
// wraps ctx's cause and says where the deployment was.
func (w *watch) follow(ctx context.Context) (verdict, error) {
	// Following takes no worker slot: another deployment may build meanwhile.
	defer w.u.r.Wait()()
	delay := w.u.t.cfg.PollMin
	timer := time.NewTimer(delay)
	defer timer.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return verdict{}, w.stopped(ctx)
		case <-timer.C:
		}
		v, err := w.poll(ctx)
		switch {
		case ctx.Err() != nil:
			return verdict{}, w.stopped(ctx)
		case err != nil:
			if fails++; fails >= readFailures {
				return verdict{}, fmt.Errorf("following ECS service %s: %w", w.u.p, err)
			}
			say(w.u.log, "reading ECS service %s: %v; trying again", w.u.p, err)
		case v.end != ongoing:
			return v, nil
		default:
			fails = 0
		}
		delay = min(2*delay, w.u.t.cfg.PollMax)
		timer.Reset(delay)
	}
}

// poll reads the service once, reports what changed and judges the deployment.
func (w *watch) poll(ctx context.Context) (verdict, error) {
	s, err := w.u.t.describe(ctx, w.u.p)
	if err != nil {
		return verdict{}, err
	}
	w.last = s
	changed := w.progress.service(s)
	v := w.judge(ctx, s)
	if ctx.Err() != nil {
		return verdict{}, context.Cause(ctx)
	}
	if changed || (v.end != ongoing && v.end != succeeded) {
		// A task that stopped changed the counts or made ECS say so; at the end, the tasks
		// explain the failure.
		w.progress.stoppedTasks(ctx, w.arn, w.id)
	}
	if v.end != ongoing && v.end != succeeded {
		if last := w.progress.lastStop(); last != "" {
			v.reason += " (last stopped task: " + last + ")"
		}
	}
	return v, nil
}

func (w *watch) judge(ctx context.Context, s ecstypes.Service) verdict {
	if w.sd == "" && w.id != "" && !w.noSD && w.finds < finds {
		w.find(ctx)
	}
	if w.sd != "" && !w.noSD {
		sd, err := w.describeSD(ctx)
		if err == nil {
			return w.fromSD(sd)
		}
		if ctx.Err() != nil {
			return verdict{}
		}
		w.unavailable(err)
	}
	return w.fromRollout(s)
}

// find looks for the service deployment ECS started for the deployment: the one service
// deployment created with it, other than the one current before the update.
func (w *watch) find(ctx context.Context) {
	w.finds++
	out, err := w.u.t.api.ListServiceDeployments(ctx, &awsecs.ListServiceDeploymentsInput{
		Cluster: aws.String(w.u.p.cluster), Service: aws.String(w.u.p.service),
		CreatedAt: &ecstypes.CreatedAt{After: aws.Time(w.created.Add(-sameDeployment))},
	})
	if err != nil {
		if ctx.Err() == nil {
			w.unavailable(err)
		}
		return
	}
	var found []string
	for _, b := range out.ServiceDeployments {
		arn := aws.ToString(b.ServiceDeploymentArn)
		if arn != w.sdBefore && !aws.ToTime(b.CreatedAt).Before(w.created.Add(-sameDeployment)) {
			found = append(found, arn)
		}
	}
	switch {
	case len(found) == 1:
		w.sd = found[0]
	case w.finds == finds:
		say(w.u.log, "ECS lists %d service deployments that could be this one: following the deployment's rollout state", len(found))
	}
}

func (w *watch) describeSD(ctx context.Context) (ecstypes.ServiceDeployment, error) {
	out, err := w.u.t.api.DescribeServiceDeployments(ctx, &awsecs.DescribeServiceDeploymentsInput{ServiceDeploymentArns: []string{w.sd}})
	if err != nil {
		return ecstypes.ServiceDeployment{}, err
	}
	for _, sd := range out.ServiceDeployments {
		if aws.ToString(sd.ServiceDeploymentArn) == w.sd {
			return sd, nil
		}
	}
	for _, f := range out.Failures {
		return ecstypes.ServiceDeployment{}, fmt.Errorf("%s: %s", aws.ToString(f.Reason), aws.ToString(f.Detail))
	}
	return ecstypes.ServiceDeployment{}, fmt.Errorf("ECS did not describe service deployment %s", w.sd)
}

// unavailable gives up on the service-deployment API for this deployment: not offered (older
// regions, emulators) or not allowed (ecs:DescribeServiceDeployments missing from the policy).
func (w *watch) unavailable(err error) {
	w.noSD = true
	say(w.u.log, "ECS's service deployments did not answer (%v): following the deployment's rollout state", err)
	w.u.logger.Warn("ECS service-deployment API unavailable", "err", err)
}

// fromSD judges by ECS's service deployment: its final statuses are ECS's verdict.
func (w *watch) fromSD(sd ecstypes.ServiceDeployment) verdict {
	w.sdStatus = sd.Status
	w.progress.serviceDeployment(sd)
	reason := aws.ToString(sd.StatusReason)
	if rb := sd.Rollback; rb != nil && aws.ToString(rb.Reason) != "" {
		reason = aws.ToString(rb.Reason)
	}
	switch sd.Status {
	case ecstypes.ServiceDeploymentStatusSuccessful:
		return verdict{end: succeeded}
	case ecstypes.ServiceDeploymentStatusRollbackSuccessful:
		return verdict{rolledBack, "ECS rolled the deployment back: " + cmp.Or(reason, "no reason given")}
	case ecstypes.ServiceDeploymentStatusRollbackFailed:
		return verdict{stuck, fmt.Sprintf("ECS's rollback of the deployment failed as well: %s; ECS service %s needs attention",
			cmp.Or(reason, "no reason given"), w.u.p)}
	case ecstypes.ServiceDeploymentStatusStopped:
		return verdict{failed, "ECS stopped the deployment: " + cmp.Or(reason, "no reason given")}
	}
	return verdict{}
}

// fromRollout judges by the service's deployments, as ECS's rolling updates report them.
func (w *watch) fromRollout(s ecstypes.Service) verdict {
	if w.id == "" {
		return w.steady(s)
	}
	if w.rollback != "" {
		rb := deployment(s, w.rollback)
		switch {
		case rb == nil:
			return verdict{failed, fmt.Sprintf("%s; ECS's rollback deployment %s was replaced by another update", w.reason, w.rollback)}
		case rb.RolloutState == ecstypes.DeploymentRolloutStateCompleted,
			rb.RolloutState == "" && len(s.Deployments) == 1 && rb.RunningCount == rb.DesiredCount:
			return verdict{rolledBack, "ECS rolled the deployment back: " + w.reason}
		case rb.RolloutState == ecstypes.DeploymentRolloutStateFailed:
			return verdict{stuck, fmt.Sprintf("%s; ECS's rollback failed as well: %s; ECS service %s needs attention",
				w.reason, aws.ToString(rb.RolloutStateReason), w.u.p)}
		}
		return verdict{}
	}
	d := deployment(s, w.id)
	if d == nil {
		return verdict{failed, fmt.Sprintf("ECS deployment %s of %s is gone from ECS service %s: another update replaced it", w.id, short(w.arn), w.u.p)}
	}
	switch d.RolloutState {
	case ecstypes.DeploymentRolloutStateCompleted:
		return verdict{end: succeeded}
	case ecstypes.DeploymentRolloutStateFailed:
		w.reason = cmp.Or(aws.ToString(d.RolloutStateReason), "ECS marked the deployment FAILED")
		if p := primary(s); p != nil && aws.ToString(p.Id) != w.id {
			w.rollback = aws.ToString(p.Id)
			say(w.u.log, "ECS is rolling the service back to %s (deployment %s)", short(aws.ToString(p.TaskDefinition)), w.rollback)
			return w.fromRollout(s)
		}
		if !rollsBack(s) {
			return verdict{failed, "ECS failed the deployment: " + w.reason}
		}
		// The circuit breaker's rollback is about to start.
	case "":
		// No rollout state (no circuit breaker watches it, or a classic load balancer): steady
		// when it is the only deployment and runs what it should, as the SDK's waiter judges.
		if aws.ToString(d.Status) == "PRIMARY" && len(s.Deployments) == 1 && d.RunningCount == d.DesiredCount {
			return verdict{end: succeeded}
		}
	}
	return verdict{}
}

// steady judges a service that lists no deployment of the task definition it was updated to: it
// must name that task definition and be steady (one deployment, not failed or in progress, all
// desired tasks running). ECS itself always lists the deployment; emulators such as moto do not.
func (w *watch) steady(s ecstypes.Service) verdict {
	if now := aws.ToString(s.TaskDefinition); now != w.arn {
		return verdict{failed, fmt.Sprintf("ECS service %s now names %s, not %s: another update replaced it", w.u.p, short(now), short(w.arn))}
	}
	if len(s.Deployments) == 1 && s.RunningCount == s.DesiredCount {
		switch s.Deployments[0].RolloutState {
		case ecstypes.DeploymentRolloutStateCompleted, "":
			return verdict{end: succeeded}
		}
	}
	return verdict{}
}

// rollingBack says whether ECS has started putting the previous revision back itself.
func (w *watch) rollingBack() bool {
	switch w.sdStatus {
	case ecstypes.ServiceDeploymentStatusRollbackRequested, ecstypes.ServiceDeploymentStatusRollbackInProgress:
		return true
	}
	return w.rollback != ""
}

// stopped is the error of a watch whose context ended: its cause, and where the deployment was.
func (w *watch) stopped(ctx context.Context) error {
	return fmt.Errorf("%w (%s)", context.Cause(ctx), w.state())
}

// state says where the deployment was when last read.
func (w *watch) state() string {
	s := w.last
	var st string
	if d := deployment(s, w.id); d != nil {
		st = fmt.Sprintf("ECS deployment %s of %s was %s: %s", w.id, short(w.arn),
			cmp.Or(string(d.RolloutState), aws.ToString(d.Status)), counts(d.RunningCount, d.PendingCount, d.DesiredCount, d.FailedTasks))
	} else {
		st = fmt.Sprintf("ECS service %s on %s: %s", w.u.p, short(aws.ToString(s.TaskDefinition)),
			counts(s.RunningCount, s.PendingCount, s.DesiredCount, 0))
	}
	if w.sdStatus != "" {
		st += fmt.Sprintf("; service deployment %s", w.sdStatus)
	}
	if last := w.progress.lastStop(); last != "" {
		st += "; last stopped task: " + last
	}
	return st
}

func counts(running, pending, desired, failed int32) string {
	c := fmt.Sprintf("%d running, %d pending, %d desired", running, pending, desired)
	if failed > 0 {
		c += fmt.Sprintf(", %d failed", failed)
	}
	return c
}
