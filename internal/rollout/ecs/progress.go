package ecs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsecs "github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// progress reports to the deploy log what ECS does with the service: each deployment's task
// counts and rollout state, the service's new events, the service deployment's status and stage,
// and every task of the new revision that stopped. One line per change, nothing while nothing
// changes.
type progress struct {
	u           *update
	deployments map[string]string // deployment ID → the line last reported
	events      map[string]bool   // service event IDs seen, those from before the update included
	sd          string            // the service deployment's status and stage last reported
	tasks       map[string]bool   // stopped tasks looked at already
	stops       []string          // what the stopped tasks of the new revision said, oldest first
}

func newProgress(u *update, before ecstypes.Service) *progress {
	p := &progress{u: u, deployments: map[string]string{}, events: map[string]bool{}, tasks: map[string]bool{}}
	for _, e := range before.Events {
		p.events[aws.ToString(e.Id)] = true
	}
	return p
}

// service reports what changed in s since it was last read, and whether anything did.
func (p *progress) service(s ecstypes.Service) (changed bool) {
	for _, d := range s.Deployments {
		id := aws.ToString(d.Id)
		line := fmt.Sprintf("deployment %s of %s (%s): %s", id, short(aws.ToString(d.TaskDefinition)),
			strings.ToLower(aws.ToString(d.Status)), counts(d.RunningCount, d.PendingCount, d.DesiredCount, d.FailedTasks))
		if d.RolloutState != "" {
			line += ", " + string(d.RolloutState)
			if r := aws.ToString(d.RolloutStateReason); r != "" && d.RolloutState != ecstypes.DeploymentRolloutStateInProgress {
				line += ": " + r
			}
		}
		if p.deployments[id] != line {
			p.deployments[id] = line
			say(p.u.log, "%s", line)
			changed = true
		}
	}
	// ECS lists events newest first.
	for _, e := range slices.Backward(s.Events) {
		if id := aws.ToString(e.Id); !p.events[id] {
			p.events[id] = true
			say(p.u.log, "ECS: %s", aws.ToString(e.Message))
			changed = true
		}
	}
	return changed
}

// serviceDeployment reports the service deployment's status and lifecycle stage when they changed.
func (p *progress) serviceDeployment(sd ecstypes.ServiceDeployment) {
	line := "service deployment " + string(sd.Status)
	if sd.LifecycleStage != "" {
		line += ", stage " + string(sd.LifecycleStage)
	}
	if r := aws.ToString(sd.StatusReason); r != "" {
		line += ": " + r
	}
	if line != p.sd {
		p.sd = line
		say(p.u.log, "%s", line)
	}
}

// stoppedTasks reports the tasks of task definition arn, started by deployment id (any, when ""),
// that stopped since it last looked. Failing to read them costs the log lines, not the deployment.
func (p *progress) stoppedTasks(ctx context.Context, arn, id string) {
	t, pl := p.u.t, p.u.p
	list, err := t.api.ListTasks(ctx, &awsecs.ListTasksInput{
		Cluster: aws.String(pl.cluster), ServiceName: aws.String(pl.service), DesiredStatus: ecstypes.DesiredStatusStopped,
	})
	if err != nil {
		if ctx.Err() == nil {
			say(p.u.log, "could not list the stopped tasks of ECS service %s: %v", pl, err)
		}
		return
	}
	var fresh []string
	for _, a := range list.TaskArns {
		if !p.tasks[a] {
			fresh = append(fresh, a)
		}
	}
	if len(fresh) == 0 {
		return
	}
	// DescribeTasks takes 100 at a time; more than that stopping between two reads is rare and
	// the rest are read at the next change.
	fresh = fresh[:min(len(fresh), 100)]
	out, err := t.api.DescribeTasks(ctx, &awsecs.DescribeTasksInput{Cluster: aws.String(pl.cluster), Tasks: fresh})
	if err != nil {
		if ctx.Err() == nil {
			say(p.u.log, "could not describe the stopped tasks of ECS service %s: %v", pl, err)
		}
		return
	}
	for _, a := range fresh {
		p.tasks[a] = true
	}
	tasks := out.Tasks
	slices.SortFunc(tasks, func(a, b ecstypes.Task) int { return aws.ToTime(a.StoppedAt).Compare(aws.ToTime(b.StoppedAt)) })
	for _, k := range tasks {
		if aws.ToString(k.TaskDefinitionArn) != arn {
			continue
		}
		if by := aws.ToString(k.StartedBy); id != "" && by != "" && by != id {
			continue
		}
		line := fmt.Sprintf("task %s of %s stopped: %s", taskID(aws.ToString(k.TaskArn)), short(arn), stopReason(k))
		p.stops = append(p.stops, line)
		say(p.u.log, "%s", line)
	}
}

// lastStop is the last stopped task reported, "" when none was.
func (p *progress) lastStop() string {
	if len(p.stops) == 0 {
		return ""
	}
	return p.stops[len(p.stops)-1]
}

// stopReason says why task k stopped: ECS's reason and code, and each container's exit code and
// reason where it has one.
func stopReason(k ecstypes.Task) string {
	reason := cmp.Or(aws.ToString(k.StoppedReason), "no reason given")
	if k.StopCode != "" {
		reason += " (" + string(k.StopCode) + ")"
	}
	for _, c := range k.Containers {
		var parts []string
		if c.ExitCode != nil {
			parts = append(parts, fmt.Sprintf("exit code %d", *c.ExitCode))
		}
		if r := aws.ToString(c.Reason); r != "" {
			parts = append(parts, r)
		}
		if len(parts) > 0 {
			reason += fmt.Sprintf("; container %s: %s", aws.ToString(c.Name), strings.Join(parts, ", "))
		}
	}
	return reason
}

// taskID is the last part of a task's ARN, the ID the console shows.
func taskID(arn string) string {
	return arn[strings.LastIndexByte(arn, '/')+1:]
}
