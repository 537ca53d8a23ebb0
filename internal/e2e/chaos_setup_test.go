package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The chaos test's setup: its services, repository, Swarm services and replicas, and how it reads
// the targets at the end.

func chaosMakeServices(cfg chaosConfig, e *dockerEnv, prefix string) []chaosService {
	var out []chaosService
	for i := range cfg.dockerServices + cfg.swarmServices {
		kind, name := "docker", fmt.Sprintf("c%02d", i+1)
		if i >= cfg.dockerServices {
			kind, name = "swarm", fmt.Sprintf("s%02d", i-cfg.dockerServices+1)
		}
		out = append(out, chaosService{name: name, kind: kind, target: prefix + name,
			image: e.registry + "/" + cfg.imagePrefix + name})
	}
	return out
}

// chaosCleanupDocker removes, at the end, every container, Swarm service and image the test's
// names start with.
func chaosCleanupDocker(t *testing.T, e *dockerEnv, prefix, imagePrefix string) {
	t.Cleanup(func() {
		if out, err := e.docker("service", "ls", "-q", "--filter", "name="+prefix); err == nil && out != "" {
			_, _ = e.docker(append([]string{"service", "rm"}, strings.Fields(out)...)...)
		}
		if out, err := e.docker("ps", "-aq", "--filter", "name="+prefix); err == nil && out != "" {
			_, _ = e.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
		}
		out, err := e.docker("image", "ls", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}")
		if err != nil {
			return
		}
		var refs []string
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) != 3 || !strings.HasPrefix(f[0], e.registry+"/"+imagePrefix) {
				continue
			}
			if f[1] != "<none>" {
				refs = append(refs, f[0]+":"+f[1])
			} else if f[2] != "<none>" {
				refs = append(refs, f[0]+"@"+f[2])
			}
		}
		if len(refs) > 0 {
			// --no-prune: other tests' builds share the base's cached layers.
			_, _ = e.docker(append([]string{"rmi", "-f", "--no-prune"}, refs...)...)
		}
	})
}

// chaosCreateSwarm creates the Swarm services (Slipway updates services, never creates them) and
// waits until each runs its task. It returns service id → name.
func chaosCreateSwarm(t *testing.T, e *dockerEnv, engine *engineAPI, services []chaosService) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, s := range services {
		if s.kind != "swarm" {
			continue
		}
		out, err := e.docker("service", "create", "--detach", "--name", s.target, "--network", "host",
			"--stop-grace-period", "1s", e.base, "sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done")
		if err != nil {
			t.Fatalf("harness: docker service create %s: %v\n%s", s.target, err, out)
		}
		// The CLI's output may carry warnings (no digest for a local image): ask the engine.
		id, _, err := engine.service(context.Background(), s.target)
		if err != nil {
			t.Fatalf("harness: reading swarm service %s: %v", s.target, err)
		}
		ids[id] = s.target
	}
	deadline := time.Now().Add(2 * time.Minute)
	for len(ids) > 0 {
		ts, err := engine.tasks(context.Background(), slices.Collect(maps.Keys(ids)))
		running := map[string]bool{}
		for _, k := range ts {
			running[k.ServiceID] = running[k.ServiceID] || k.Status.State == "running"
		}
		if err == nil && len(running) == len(ids) && !slices.Contains(slices.Collect(maps.Values(running)), false) {
			return ids
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: swarm services not running after 2 minutes (err %v, tasks %+v)", err, ts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return ids
}

// chaosRepo writes the monorepo: one directory per service with its Dockerfile and a version file
// every push rewrites for the services it touches.
func chaosRepo(t *testing.T, e *dockerEnv, services []chaosService) *gitRepo {
	t.Helper()
	repo := newGitRepo(t)
	var b strings.Builder
	b.WriteString("services:\n")
	for _, s := range services {
		target := fmt.Sprintf("docker: {container: %s}", s.target)
		if s.kind == "swarm" {
			target = fmt.Sprintf("swarm: {service: %s}", s.target)
		}
		fmt.Fprintf(&b, "  %s:\n    paths: [services/%s/**]\n    context: services/%s\n    image: %s\n"+
			"    environments:\n      production: {branch: main, %s}\n", s.name, s.name, s.name, s.image, target)
		// busybox sleep ignores SIGTERM as PID 1; the trap lets docker stop and Swarm end it at once.
		repo.write("services/"+s.name+"/Dockerfile", fmt.Sprintf("FROM %s\nCOPY version /version\n"+
			"CMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n", e.base))
	}
	repo.write(".slipway.yml", b.String())
	return repo
}

func chaosStartReplicas(t *testing.T, cfg chaosConfig, bin, dbURL, cloneURL string, e *dockerEnv, logDir string) []*chaosReplica {
	t.Helper()
	env := []string{
		"SLIPWAY_DATABASE_URL=" + dbURL,
		"SLIPWAY_WEBHOOK_SECRET=" + webhookSecret,
		"SLIPWAY_GIT_ALLOW_INSECURE_URLS=true",
		"SLIPWAY_API_TOKENS=" + apiToken,
		"SLIPWAY_METRICS_PUBLIC=true", // scraped anonymously, as a Prometheus on a trusted network would
		"SLIPWAY_LOG_FORMAT=text",
		"SLIPWAY_LOG_LEVEL=debug",
		"SLIPWAY_WORKERS=" + strconv.Itoa(cfg.workers),
		"SLIPWAY_QUEUE_POLL_INTERVAL=500ms",
		"SLIPWAY_QUEUE_LEASE=" + cfg.lease.String(),
		"SLIPWAY_QUEUE_RESCUE_EVERY=" + cfg.rescueEvery.String(),
		"SLIPWAY_QUEUE_BACKOFF_BASE=" + cfg.backoffBase.String(),
		"SLIPWAY_QUEUE_SHUTDOWN_GRACE=5s",
		"SLIPWAY_DOCKER_BINARY=" + e.cli,
		"SLIPWAY_DOCKER_BUILD_NETWORK=host",
		"SLIPWAY_DOCKER_STABLE_FOR=1s",
		"SLIPWAY_DOCKER_SWARM_UPDATE_MONITOR=1s",
		repoConfig(t, cloneURL, "registries:\n  - host: "+e.registry+"\n    insecure: true"),
	}
	var out []*chaosReplica
	for n := 1; n <= cfg.replicas; n++ {
		dir := t.TempDir()
		renv := append(slices.Clone(env),
			"SLIPWAY_GIT_CACHE_DIR="+filepath.Join(dir, "git"), "SLIPWAY_GIT_WORK_DIR="+filepath.Join(dir, "work"))
		if err := os.Mkdir(filepath.Join(dir, "work"), 0o755); err != nil {
			t.Fatalf("harness: %v", err)
		}
		out = append(out, newChaosReplica(n, bin, fmt.Sprintf("127.0.0.1:%d", freePort(t)), logDir, renv))
	}
	return out
}

// chaosAwaitUp waits until every replica answers /readyz: a replica that never does is a broken
// harness (or a binary that cannot start), not an invariant.
func chaosAwaitUp(t *testing.T, replicas []*chaosReplica, limit time.Duration) {
	t.Helper()
	deadline := time.After(limit)
	for _, r := range replicas {
		for {
			st, changed := r.State()
			if st == replicaUp {
				break
			}
			select {
			case <-changed:
			case <-deadline:
				r.mu.Lock()
				exits, log := strings.Join(r.exits, "\n"), r.logPath(r.starts)
				r.mu.Unlock()
				t.Fatalf("harness: replica %d not ready after %s:\n%s\n%s", r.n, limit, exits, tail(log, 30))
			}
		}
	}
}

// chaosTargets reads what each service's target runs now.
func chaosTargets(engine *engineAPI, services []chaosService, swarmIDs map[string]string) map[string]targetState {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := map[string]targetState{}
	cs, cerr := engine.runningContainers(ctx, services[0].target[:strings.LastIndexByte(services[0].target, '-')+1])
	for _, s := range services {
		var ts targetState
		switch s.kind {
		case "docker":
			ts.err = cerr
			for _, c := range cs {
				if c.State != "running" || !belongsTo(c, s.target) {
					continue
				}
				im, err := engine.containerImage(ctx, c.ID)
				if err != nil {
					ts.err = err
				}
				ts.images = append(ts.images, im)
			}
		case "swarm":
			var id string
			id, ts.spec, ts.err = engine.service(ctx, s.target)
			if ts.err == nil {
				tasks, err := engine.tasks(ctx, []string{id})
				ts.err = err
				for _, k := range tasks {
					if k.Status.State == "running" {
						ts.images = append(ts.images, k.Spec.ContainerSpec.Image)
					}
				}
			}
		}
		out[s.name] = ts
	}
	return out
}

// chaosRetry retries fn while PostgreSQL or a replica comes back, until ctx ends.
func chaosRetry[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	for {
		v, err := fn()
		if err == nil || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// signedPush posts a push webhook to url with delivery id; it returns the status and run id.
func signedPush(client *http.Client, url, delivery string, body []byte) (int, int64, string, error) {
	mac := hmac.New(sha256.New, []byte(webhookSecret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, url+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var out struct {
		RunID int64 `json:"run_id"`
	}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out.RunID, string(raw), nil
}
