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
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/pipeline"
	"github.com/slipway-dev/slipway/internal/target/dockercli"
)

// rollout runs r.Image as the container r.Target.Docker.Container. On failure, restored says
// whether a container that ran before is back under the name.
func (t *Target) rollout(ctx context.Context, r deploy.Rollout, log deploy.LogFunc) (restored bool, err error) {
	spec, err := checkRollout(r)
	if err != nil {
		return false, err
	}
	name := spec.Container
	say := func(format string, args ...any) { log(dockercli.Stream, fmt.Sprintf(format, args...)) }
	logger := t.logger.With("deployment_id", r.DeploymentID, "service", r.Service, "container", name)

	// Pull while the old container still serves: a missing image must not cost any downtime.
	if err := t.ensureImage(ctx, r.Image, say, log); err != nil {
		return false, err
	}

	prev, err := t.setAside(ctx, name, say)
	if err != nil {
		if prev != nil {
			return t.recover(ctx, name, "", prev, err, say, logger)
		}
		return false, err
	}

	say("starting container %s from %s", name, r.Image)
	out, err := t.docker.Output(ctx, runArgs(name, spec, r)...)
	id := firstLine(out)
	if err != nil {
		return t.recover(ctx, name, id, prev, fmt.Errorf("starting the container: %w", err), say, logger)
	}
	if err := t.waitReady(ctx, id, t.healthTimeout(spec), true, say); err != nil {
		return t.recover(ctx, name, id, prev, err, say, logger)
	}
	// Started with --restart no so that a failing container stays down where its exit code can be
	// read, instead of restarting under the wait; now it has proved itself, it gets the policy.
	if _, err := t.docker.Output(ctx, "update", "--restart", "unless-stopped", id); err != nil {
		return t.recover(ctx, name, id, prev, fmt.Errorf("setting the restart policy: %w", err), say, logger)
	}
	say("container %s is running %s", name, r.Image)
	logger.InfoContext(ctx, "container deployed", "image", r.Image)

	if prev != nil {
		if _, err := t.docker.Output(ctx, "rm", "--force", prev.ID); err != nil {
			// The deployment succeeded; a leftover container is removed by the next one.
			say("could not remove the previous container %s: %v", previousName(name), err)
			logger.WarnContext(ctx, "removing previous container", "error", err)
		} else {
			say("removed the previous container; its image %s stays in the engine, for rollback", prev.Config.Image)
		}
	}
	return false, nil
}

func (t *Target) healthTimeout(spec *pipeline.DockerTarget) time.Duration {
	return cmp.Or(spec.HealthTimeout, t.cfg.HealthTimeout)
}

// ensureImage pulls image unless the engine has it already.
func (t *Target) ensureImage(ctx context.Context, image string, say func(string, ...any), log deploy.LogFunc) error {
	_, err := t.docker.Output(ctx, "image", "inspect", "--format", "{{.Id}}", image)
	if err == nil {
		return nil
	}
	if !dockercli.IsNotFound(err) {
		return fmt.Errorf("looking up image %s: %w", image, err)
	}
	say("pulling %s", image)
	if err := t.docker.RunCollapsed(ctx, log, "pull", image); err != nil {
		return fmt.Errorf("pulling %s: %w", image, err)
	}
	return nil
}

// setAside stops the container called name and renames it to previousName(name), returning it, or
// nil when there is none. A previous container without a current one is what a deploy interrupted
// between rename and run leaves behind; it is kept as the one to fall back on. When setAside fails
// after it found a container, it returns that container too, so the caller can restart it.
func (t *Target) setAside(ctx context.Context, name string, say func(string, ...any)) (*container, error) {
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
			say("no container %s, but %s is left from an interrupted deploy: keeping it to fall back on",
				name, previousName(name))
		}
		return stale, nil
	}
	if stale != nil {
		say("removing %s, left from an earlier deploy", previousName(name))
		if _, err := t.docker.Output(ctx, "rm", "--force", stale.ID); err != nil {
			return nil, fmt.Errorf("removing %s: %w", previousName(name), err)
		}
	}
	say("stopping container %s (image %s)", name, cur.Config.Image)
	secs := strconv.Itoa(int(math.Ceil(t.cfg.StopTimeout.Seconds())))
	if _, err := t.docker.Output(ctx, "stop", "--time", secs, cur.ID); err != nil {
		return cur, fmt.Errorf("stopping container %s: %w", name, err)
	}
	if _, err := t.docker.Output(ctx, "rename", cur.ID, previousName(name)); err != nil {
		return cur, fmt.Errorf("renaming container %s: %w", name, err)
	}
	return cur, nil
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

func firstLine(b []byte) string {
	s := string(b)
	for i, c := range s {
		if c == '\n' || c == '\r' {
			return s[:i]
		}
	}
	return s
}
