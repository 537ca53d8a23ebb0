package docker

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/slipway-dev/slipway/internal/deploy"
	"github.com/slipway-dev/slipway/internal/dockercli"
)

// Labels on every container Slipway creates. LabelTarget says which target (container name) the
// container belongs to, LabelDeployment which deployment created it.
const (
	LabelTarget      = "dev.slipway.target"
	LabelDeployment  = "dev.slipway.deployment"
	LabelRepo        = deploy.LabelRepo
	LabelService     = "dev.slipway.service"
	LabelEnvironment = "dev.slipway.environment"
)

// box is what the target needs of one container.
type box struct {
	ID         string
	Name       string // without docker's leading "/"
	Image      string // the reference it was started from: repository@sha256:… for Slipway's
	Deployment int64  // from its label, 0 if none
	Repo       string // its owner, from its label; "" for a container Slipway did not create
	Running    bool
}

func boxOf(c container.InspectResponse) *box {
	b := &box{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/")}
	if c.Config != nil {
		b.Image = c.Config.Image
		b.Deployment, _ = strconv.ParseInt(c.Config.Labels[LabelDeployment], 10, 64)
		b.Repo = c.Config.Labels[LabelRepo]
	}
	if c.State != nil {
		b.Running = c.State.Running
	}
	return b
}

// survey is what runs, or lies around, for one target.
type survey struct {
	live   *box   // the container of the deployment recorded live, if it exists
	others []*box // every other container of the target: left by interrupted attempts, or older
}

// survey lists the containers of target name: those labelled with it, and an unlabelled one
// holding the name (made by hand, or by an older Slipway). The one of deployment liveID is the
// live one; an unlabelled container holding the name stands in for it when there is none, as the
// version that ran before Slipway took over.
func (t *Target) survey(ctx context.Context, name string, liveID int64) (survey, error) {
	list, err := t.eng.API.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", LabelTarget+"="+name))})
	if err != nil {
		return survey{}, fmt.Errorf("listing containers of %s: %w", name, err)
	}
	var s survey
	seen := map[string]bool{}
	for _, c := range list {
		b, err := t.inspect(ctx, c.ID)
		if err != nil {
			return survey{}, err
		}
		if b == nil {
			continue // removed meanwhile
		}
		seen[b.ID] = true
		if liveID != 0 && b.Deployment == liveID && (s.live == nil || (b.Running && !s.live.Running)) {
			if s.live != nil {
				s.others = append(s.others, s.live)
			}
			s.live = b
			continue
		}
		s.others = append(s.others, b)
	}
	named, err := t.inspect(ctx, name)
	if err != nil {
		return survey{}, err
	}
	if named != nil && !seen[named.ID] {
		if s.live == nil {
			s.live = named
		} else {
			s.others = append(s.others, named)
		}
	}
	return s, nil
}

// checkOwner refuses the rollout when a container of the target belongs to another repository,
// or was not made by Slipway and the policy does not adopt it.
func (s survey) checkOwner(r deploy.Rollout) error {
	for _, b := range append([]*box{s.live}, s.others...) {
		if b == nil {
			continue
		}
		if err := r.CheckOwner("container "+b.Name, b.Repo); err != nil {
			return err
		}
	}
	return nil
}

// inspect returns the container called (or with the id) ref, or nil when there is none.
func (t *Target) inspect(ctx context.Context, ref string) (*box, error) {
	c, err := t.eng.API.ContainerInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting container %s: %w", ref, err)
	}
	return boxOf(c), nil
}

// create makes (without starting) a container of r.Image for deployment id, per spec, called name.
func (t *Target) create(ctx context.Context, r deploy.Rollout, id int64, image string, spec *deploy.Container, name string) (*box, error) {
	if err := r.CheckHeld(); err != nil {
		return nil, err
	}
	cfg, host, err := containerConfig(r, id, image, spec)
	if err != nil {
		return nil, err
	}
	created, err := t.eng.API.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if err != nil {
		return nil, fmt.Errorf("creating container %s: %w", name, err)
	}
	return &box{ID: created.ID, Name: name, Image: image, Deployment: id}, nil
}

// containerConfig is the new container's definition. Environment values travel in the API
// request, never on a command line.
func containerConfig(r deploy.Rollout, id int64, image string, spec *deploy.Container) (*container.Config, *container.HostConfig, error) {
	network := cmp.Or(spec.Network, "host")
	cfg := &container.Config{
		Image: image,
		Labels: map[string]string{
			LabelTarget:      spec.Container,
			LabelDeployment:  strconv.FormatInt(id, 10),
			LabelRepo:        strings.ToLower(r.Repo),
			LabelService:     r.Service,
			LabelEnvironment: r.Environment,
		},
	}
	for _, k := range slices.Sorted(maps.Keys(spec.Env)) {
		cfg.Env = append(cfg.Env, k+"="+spec.Env[k])
	}
	if len(spec.Command) > 0 {
		cfg.Cmd = slices.Clone(spec.Command)
	}
	// Started with restart "no" so that a failing container stays down where its exit code can
	// be read, instead of restarting under the wait; once it has proved itself it gets the policy.
	host := &container.HostConfig{NetworkMode: container.NetworkMode(network),
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled}}
	// Docker ignores published ports on the host network; leave them out instead.
	if network != "host" && len(spec.Ports) > 0 {
		exposed, bindings, err := nat.ParsePortSpecs(spec.Ports)
		if err != nil {
			return nil, nil, fmt.Errorf("ports of %s: %w", spec.Container, err)
		}
		cfg.ExposedPorts, host.PortBindings = exposed, bindings
	}
	return cfg, host, nil
}

// stop stops a running container, giving it StopTimeout.
func (t *Target) stop(ctx context.Context, r deploy.Rollout, b *box) error {
	if err := r.CheckHeld(); err != nil {
		return err
	}
	secs := int(t.cfg.StopTimeout.Round(time.Second).Seconds())
	if err := t.eng.API.ContainerStop(ctx, b.ID, container.StopOptions{Timeout: &secs}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("stopping container %s: %w", b.Name, err)
	}
	b.Running = false
	return nil
}

func (t *Target) remove(ctx context.Context, r deploy.Rollout, b *box) error {
	if err := r.CheckHeld(); err != nil {
		return err
	}
	err := t.eng.API.ContainerRemove(ctx, b.ID, container.RemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", b.Name, err)
	}
	return nil
}

func (t *Target) rename(ctx context.Context, r deploy.Rollout, b *box, name string) error {
	if b.Name == name {
		return nil
	}
	if err := r.CheckHeld(); err != nil {
		return err
	}
	if err := t.eng.API.ContainerRename(ctx, b.ID, name); err != nil {
		return fmt.Errorf("renaming container %s to %s: %w", b.Name, name, err)
	}
	b.Name = name
	return nil
}

func (t *Target) start(ctx context.Context, r deploy.Rollout, b *box) error {
	if err := r.CheckHeld(); err != nil {
		return err
	}
	if err := t.eng.API.ContainerStart(ctx, b.ID, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", b.Name, err)
	}
	b.Running = true
	return nil
}

// keep gives a container that proved itself the restart policy a service needs.
func (t *Target) keep(ctx context.Context, r deploy.Rollout, b *box) error {
	if err := r.CheckHeld(); err != nil {
		return err
	}
	_, err := t.eng.API.ContainerUpdate(ctx, b.ID, container.UpdateConfig{
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped}})
	if err != nil {
		return fmt.Errorf("setting the restart policy of %s: %w", b.Name, err)
	}
	return nil
}

// tail writes the last lines of a container's output to log.
func (t *Target) tail(ctx context.Context, b *box, log deploy.LogFunc) {
	rc, err := t.eng.API.ContainerLogs(ctx, b.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: "50"})
	if err != nil {
		say(log, "could not read its output: %v", err)
		return
	}
	defer rc.Close()
	say(log, "last output of the new container:")
	out := dockercli.LineWriter(func(line string) { log(dockercli.Stream, "| "+line) })
	if _, err := stdcopy.StdCopy(out, out, io.LimitReader(rc, 1<<20)); err != nil {
		say(log, "could not read its output: %v", err)
	}
	out.Close()
}

// exitReason says how a container that stopped running ended, the way an operator would want to
// read it first: "container exited with code 3 after 0.4s".
func exitReason(c container.InspectResponse) string {
	if c.State == nil {
		return "container state unknown"
	}
	st := c.State
	started, _ := time.Parse(time.RFC3339Nano, st.StartedAt)
	finished, _ := time.Parse(time.RFC3339Nano, st.FinishedAt)
	ran := max(finished.Sub(started), 0)
	msg := fmt.Sprintf("container exited with code %d after %.1fs", st.ExitCode, ran.Seconds())
	if st.OOMKilled {
		msg += " (killed: out of memory)"
	}
	if st.Error != "" {
		msg += ": " + st.Error
	}
	return msg
}

// lastHealthCheck describes the latest health check, for an error message.
func lastHealthCheck(c container.InspectResponse) string {
	if c.State == nil || c.State.Health == nil || len(c.State.Health.Log) == 0 {
		return "no health check has finished"
	}
	last := c.State.Health.Log[len(c.State.Health.Log)-1]
	out := strings.Join(strings.Fields(last.Output), " ")
	if len(out) > 200 {
		out = strings.ToValidUTF8(out[:200], "") + "…"
	}
	if out == "" {
		return fmt.Sprintf("last check exited with %d", last.ExitCode)
	}
	return fmt.Sprintf("last check exited with %d: %s", last.ExitCode, out)
}
