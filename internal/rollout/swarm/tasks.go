package swarm

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// taskList lists the tasks of service id, the history Swarm keeps included, newest first. more
// narrows the list.
func (t *Target) taskList(ctx context.Context, id string, more ...filters.KeyValuePair) ([]swarm.Task, error) {
	f := filters.NewArgs(append(more, filters.Arg("service", id))...)
	tasks, err := t.api.TaskList(ctx, swarm.TaskListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing the tasks of swarm service %s: %w", id, err)
	}
	slices.SortStableFunc(tasks, func(a, b swarm.Task) int { return b.Status.Timestamp.Compare(a.Status.Timestamp) })
	return tasks, nil
}

// upToDate reports whether every task of service id meant to run matches the service's spec, so
// that Swarm has nothing to replace. "_up-to-date" is the filter the docker CLI follows updates
// with: Swarm's own test of a task against the spec, not a guess from the image.
func (t *Target) upToDate(ctx context.Context, id string) (bool, error) {
	running := filters.Arg("desired-state", "running")
	all, err := t.taskList(ctx, id, running)
	if err != nil {
		return false, err
	}
	current, err := t.taskList(ctx, id, running, filters.Arg("_up-to-date", "true"))
	if err != nil {
		return false, err
	}
	return len(current) == len(all), nil
}

func taskImage(k swarm.Task) string {
	if cs := k.Spec.ContainerSpec; cs != nil {
		return cs.Image
	}
	return ""
}

// taskErr is why task k failed, "" if it did not: Swarm's error ("task: non-zero exit (3)"), or
// what else its status holds.
func taskErr(k swarm.Task) string {
	if k.Status.Err != "" {
		return k.Status.Err
	}
	if k.Status.State != swarm.TaskStateFailed && k.Status.State != swarm.TaskStateRejected {
		return ""
	}
	if cs := k.Status.ContainerStatus; cs != nil && cs.ExitCode != 0 {
		return fmt.Sprintf("exit code %d", cs.ExitCode)
	}
	return cmp.Or(k.Status.Message, string(k.Status.State))
}

// taskName names task k as `docker service ps` does: service.slot, or service.node for a global
// service.
func taskName(service string, k swarm.Task) string {
	if k.Slot > 0 {
		return fmt.Sprintf("%s.%d", service, k.Slot)
	}
	return service + "." + k.NodeID
}

// progress reports to the deploy log what Swarm does with the service: the update's state and each
// task's, one line per change and nothing while nothing changes.
type progress struct {
	log      deploy.LogFunc
	name     string
	replicas uint64            // of a replicated service, for "task 2/3"
	tasks    map[string]string // task ID → the state last reported, or found before the update
	update   string            // the update state last reported
}

func newProgress(s swarm.Service, log deploy.LogFunc) *progress {
	return &progress{log: log, name: s.Spec.Name, replicas: replicas(s), tasks: map[string]string{}}
}

// seed records tasks as they are before the update, so that only what changes after is reported.
func (p *progress) seed(tasks []swarm.Task) {
	for _, k := range tasks {
		p.tasks[k.ID] = taskKey(k)
	}
}

// report logs each task whose state changed since it was last seen, in slot order.
func (p *progress) report(tasks []swarm.Task) {
	tasks = slices.Clone(tasks)
	slices.SortStableFunc(tasks, func(a, b swarm.Task) int {
		return cmp.Or(cmp.Compare(a.Slot, b.Slot), strings.Compare(a.NodeID, b.NodeID), a.CreatedAt.Compare(b.CreatedAt))
	})
	for _, k := range tasks {
		key := taskKey(k)
		if p.tasks[k.ID] == key {
			continue
		}
		p.tasks[k.ID] = key
		line := fmt.Sprintf("task %s %s %s", p.slot(k), k.Status.State, deploy.ShortImage(taskImage(k)))
		if e := taskErr(k); e != "" {
			line += ": " + e
		}
		say(p.log, "%s", line)
	}
}

// status logs the state of Swarm's update of the service when it changed.
func (p *progress) status(s swarm.Service) {
	st := s.UpdateStatus
	if st == nil {
		return
	}
	if key := string(st.State) + " " + st.Message; key != p.update {
		p.update = key
		say(p.log, "swarm service %s: %s (%s)", p.name, st.Message, st.State)
	}
}

func (p *progress) slot(k swarm.Task) string {
	if k.Slot > 0 && p.replicas > 0 {
		return fmt.Sprintf("%d/%d", k.Slot, p.replicas)
	}
	return "on node " + k.NodeID[:min(len(k.NodeID), 12)]
}

func taskKey(k swarm.Task) string { return string(k.Status.State) + " " + taskErr(k) }

// failure explains why the update failed: Swarm's message and the error of the newest task of the
// new image that has one, whose last output it also logs.
func (u *update) failure(ctx context.Context, st *swarm.UpdateStatus) string {
	reason := fmt.Sprintf("swarm service %s: %s (%s)", u.name, st.Message, st.State)
	tasks, err := u.t.taskList(ctx, u.id)
	if err != nil {
		say(u.log, "could not list the tasks: %v", err)
		return reason
	}
	for _, k := range tasks {
		e := taskErr(k)
		if !deploy.SameImage(taskImage(k), u.r.Image) || e == "" {
			continue
		}
		say(u.log, "last output of task %s:", k.ID)
		if err := u.t.taskOutput(ctx, k, u.log); err != nil {
			say(u.log, "could not read its output: %v", err)
		}
		return fmt.Sprintf("%s: task %s failed: %s", reason, taskName(u.name, k), e)
	}
	return reason
}

// taskOutput copies the last 50 lines task k wrote to the log, each marked "| ".
func (t *Target) taskOutput(ctx context.Context, k swarm.Task, log deploy.LogFunc) error {
	rc, err := t.api.TaskLogs(ctx, k.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "50"})
	if err != nil {
		return err
	}
	defer rc.Close()
	w := &lineWriter{line: func(line string) { log(stream, "| "+line) }}
	defer w.flush()
	// Without a TTY the engine multiplexes stdout and stderr into one stream of frames.
	if cs := k.Spec.ContainerSpec; cs != nil && cs.TTY {
		_, err = io.Copy(w, rc)
	} else {
		_, err = stdcopy.StdCopy(w, w, rc)
	}
	return err
}

// lineWriter calls line for each line written to it.
type lineWriter struct {
	line func(string)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.line(strings.TrimSuffix(string(w.buf[:i]), "\r"))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}
