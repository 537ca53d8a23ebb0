package docker

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
	"github.com/slipway-dev/slipway/internal/pipeline"
)

// rollout runs r.Image as the container r.Target.Docker.Container. On failure, restored says
// whether the container that ran before is back under the name.
func (t *Target) rollout(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (restored bool, err error) {
	spec, err := checkRollout(r)
	if err != nil {
		return false, err
	}
	name := spec.Container
	logger := t.logger.With("deployment_id", r.DeploymentID, "service", r.Service, "container", name)

	// Pull while the old container still serves: a missing image must not cost any downtime.
	if err := t.ensureImage(ctx, r.Image, log); err != nil {
		return false, err
	}

	prev, err := t.setAside(ctx, name, log)
	if err != nil {
		if prev != nil {
			return t.recover(ctx, name, "", prev, err, log, logger)
		}
		return false, err
	}

	say(log, "starting container %s from %s", name, r.Image)
	start := time.Now()
	out, err := t.docker.Output(ctx, runArgs(name, spec, r)...)
	id := strings.TrimSpace(string(out))
	if err != nil {
		return t.recover(ctx, name, id, prev, fmt.Errorf("starting the container: %w", err), log, logger)
	}
	if err := t.waitReady(ctx, id, t.healthTimeout(spec), true, log); err != nil {
		return t.recover(ctx, name, id, prev, err, log, logger)
	}
	// Started with --restart no so that a failing container stays down where its exit code can be
	// read, instead of restarting under the wait; now it has proved itself, it gets the policy.
	if _, err := t.docker.Output(ctx, "update", "--restart", "unless-stopped", id); err != nil {
		return t.recover(ctx, name, id, prev, fmt.Errorf("setting the restart policy: %w", err), log, logger)
	}
	say(log, "container %s is up with %s (%.1fs)", name, r.Image, time.Since(start).Seconds())
	logger.InfoContext(ctx, "container deployed", "image", r.Image, "duration", time.Since(start).Round(time.Millisecond))

	if prev != nil {
		if _, err := t.docker.Output(ctx, "rm", "--force", prev.ID); err != nil {
			// The deployment succeeded; the next one removes what is left.
			say(log, "could not remove the previous container %s: %v", previousName(name), err)
			logger.WarnContext(ctx, "removing previous container", "error", err)
		} else {
			say(log, "removed the previous container; its image %s stays in the engine for rollback", prev.Config.Image)
		}
	}
	return false, nil
}

func (t *Target) healthTimeout(spec *pipeline.DockerTarget) time.Duration {
	return cmp.Or(spec.HealthTimeout, t.cfg.HealthTimeout)
}

// ensureImage pulls image unless the engine has it already.
func (t *Target) ensureImage(ctx context.Context, image string, log deploy.LogFunc) error {
	_, err := t.docker.Output(ctx, "image", "inspect", "--format", "{{.Id}}", image)
	if err == nil {
		return nil
	}
	if !dockercli.IsNotFound(err) {
		return fmt.Errorf("looking up image %s: %w", image, err)
	}
	say(log, "pulling %s", image)
	if err := t.docker.RunCollapsed(ctx, log, "pull", image); err != nil {
		return fmt.Errorf("pulling %s: %w", image, err)
	}
	return nil
}

// setAside stops the container called name and renames it to previousName(name), returning it, or
// nil when there is none. A previous container without a current one is what a deploy interrupted
// between rename and run leaves behind; it is kept as the one to fall back on. When setAside fails
// after it found a container, it returns that container too, so the caller can start it again.
func (t *Target) setAside(ctx context.Context, name string, log deploy.LogFunc) (*container, error) {
	cur, err := t.inspect(ctx, name)
	if err != nil {
		return nil, err
	}
	stale, err := t.inspect(ctx, previousName(name))
	if err != nil {
		return nil, err
	}
	if cur == nil {
		if stale != nil {
			say(log, "no container %s, but %s is left from an interrupted deploy: keeping it to fall back on",
				name, previousName(name))
		}
		return stale, nil
	}
	if stale != nil {
		say(log, "removing %s, left from an earlier deploy", previousName(name))
		if _, err := t.docker.Output(ctx, "rm", "--force", stale.ID); err != nil {
			return nil, fmt.Errorf("removing %s: %w", previousName(name), err)
		}
	}
	say(log, "stopping container %s (image %s)", name, cur.Config.Image)
	secs := strconv.Itoa(int(math.Ceil(t.cfg.StopTimeout.Seconds())))
	if _, err := t.docker.Output(ctx, "stop", "--time", secs, cur.ID); err != nil {
		return cur, fmt.Errorf("stopping container %s: %w", name, err)
	}
	if _, err := t.docker.Output(ctx, "rename", cur.ID, previousName(name)); err != nil {
		return cur, fmt.Errorf("renaming container %s: %w", name, err)
	}
	return cur, nil
}

// recover cleans up after a failed or cancelled rollout: it shows the new container's last output,
// removes it, and puts prev (if any) back under name. It runs on a fresh context, since the
// deployment's own may be the reason it is needed.
func (t *Target) recover(ctx context.Context, name, id string, prev *container, cause error,
	log deploy.LogFunc, logger *slog.Logger) (restored bool, err error) {
	if ctx.Err() != nil {
		say(log, "deployment cancelled (%v): cleaning up", context.Cause(ctx))
	}
	say(log, "new container failed: %v", cause)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.RestoreTimeout)
	defer cancel()
	if err := t.discard(rctx, name, id, prev, log); err != nil {
		logger.WarnContext(ctx, "removing failed container", "error", err)
		say(log, "could not remove the new container: %v", err)
	}
	if prev == nil {
		return false, cause
	}
	if err := t.restore(rctx, name, prev, log); err != nil {
		logger.ErrorContext(ctx, "restoring previous container", "error", err)
		say(log, "could not put the previous container back: %v", err)
		return false, fmt.Errorf("%w; putting the previous container back: %w", cause, err)
	}
	logger.WarnContext(ctx, "container rolled back", "cause", cause.Error(), "image", prev.Config.Image)
	return true, cause
}

// discard logs the last output and the exit code of the new container, then removes it. id is ""
// when docker run failed before it printed one; a container called name that is not prev is then
// what it left behind.
func (t *Target) discard(ctx context.Context, name, id string, prev *container, log deploy.LogFunc) error {
	if id == "" {
		c, err := t.inspect(ctx, name)
		if err != nil {
			return err
		}
		if c == nil || (prev != nil && c.ID == prev.ID) {
			return nil
		}
		id = c.ID
	}
	c, err := t.inspect(ctx, id)
	if err != nil {
		return err
	}
	if c == nil {
		return nil
	}
	say(log, "last output of the new container:")
	output := func(stream, line string) { log(stream, "| "+line) }
	if err := t.docker.Run(ctx, output, "logs", "--tail", "50", id); err != nil {
		say(log, "could not read its output: %v", err)
	}
	if c.State.Status == "running" {
		say(log, "the new container was still running; removing it")
	} else {
		say(log, "new %s", c.exitReason())
	}
	if _, err := t.docker.Output(ctx, "rm", "--force", id); err != nil {
		return fmt.Errorf("removing container %.12s: %w", id, err)
	}
	return nil
}

// restore puts prev back under name and starts it.
func (t *Target) restore(ctx context.Context, name string, prev *container, log deploy.LogFunc) error {
	c, err := t.inspect(ctx, prev.ID)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("the previous container %.12s is gone", prev.ID)
	}
	if c.Name != "/"+name {
		if _, err := t.docker.Output(ctx, "rename", prev.ID, name); err != nil {
			return fmt.Errorf("renaming it back to %s: %w", name, err)
		}
	}
	say(log, "starting the previous container %s (image %s)", name, prev.Config.Image)
	if _, err := t.docker.Output(ctx, "start", prev.ID); err != nil {
		return fmt.Errorf("starting it: %w", err)
	}
	if err := t.waitReady(ctx, prev.ID, t.cfg.HealthTimeout, false, log); err != nil {
		return fmt.Errorf("waiting for it: %w", err)
	}
	say(log, "the previous container %s is running again", name)
	return nil
}

// runArgs is the docker run command line for the new container. The arguments go to docker as a
// list, never through a shell, so environment values reach the container byte for byte.
func runArgs(name string, spec *pipeline.DockerTarget, r deploy.Rollout) []string {
	network := cmp.Or(spec.Network, "host")
	args := []string{"run", "--detach", "--name", name, "--network", network}
	// Docker ignores published ports on the host network, with a warning; leave them out instead.
	if network != "host" {
		for _, p := range spec.Ports {
			args = append(args, "--publish", p)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		args = append(args, "--env", k+"="+spec.Env[k])
	}
	args = append(args,
		"--label", "slipway.deployment="+strconv.FormatInt(r.DeploymentID, 10),
		"--label", "slipway.service="+r.Service,
		"--label", "slipway.environment="+r.Environment,
		"--restart", "no",
		r.Image)
	return append(args, spec.Command...)
}

func say(log deploy.LogFunc, format string, args ...any) {
	log(dockercli.Stream, fmt.Sprintf(format, args...))
}
