package e2e

import (
	"cmp"
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// chaosDeploymentAttempts is deployments.max_attempts' default (migrations/0001_core.sql).
const chaosDeploymentAttempts = 3

// chaosConfig is one chaos run. SLIPWAY_CHAOS=long picks the long defaults (make chaos); each
// figure can be set on its own (README, "Test it").
type chaosConfig struct {
	mode                          string
	seed                          uint64
	pushes, kills, pauses         int
	window                        time.Duration // pushes, kills, pauses and the restart are spread over it
	deadline                      time.Duration // bounds the wait for everything to settle: it only stops a hang
	dockerServices, swarmServices int
	replicas, workers             int
	lease, rescueEvery            time.Duration
	backoffBase                   time.Duration
	imagePrefix                   string // chaos-<id>/, set once the id is known
}

func chaosConfigFromEnv(t *testing.T) chaosConfig {
	t.Helper()
	c := chaosConfig{mode: "short", pushes: 6, kills: 3, pauses: 2, window: 45 * time.Second,
		deadline: 6 * time.Minute, dockerServices: 7, swarmServices: 3, replicas: 3, workers: 2,
		lease: 3 * time.Second, rescueEvery: time.Second, backoffBase: 200 * time.Millisecond}
	if os.Getenv("SLIPWAY_CHAOS") == "long" {
		c = chaosConfig{mode: "long", pushes: 30, kills: 12, pauses: 6, window: 6 * time.Minute,
			deadline: 40 * time.Minute, dockerServices: 10, swarmServices: 4, replicas: 3, workers: 3,
			lease: c.lease, rescueEvery: c.rescueEvery, backoffBase: c.backoffBase}
	}
	c.seed = uint64(time.Now().UnixNano())
	envInt := func(name string, dst *int, least int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < least {
				t.Fatalf("harness: %s=%q: want an integer of at least %d", name, v, least)
			}
			*dst = n
		}
	}
	envDuration := func(name string, dst *time.Duration) {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				t.Fatalf("harness: %s=%q: want a positive duration", name, v)
			}
			*dst = d
		}
	}
	if v := os.Getenv("SLIPWAY_CHAOS_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("harness: SLIPWAY_CHAOS_SEED=%q: want an unsigned integer", v)
		}
		c.seed = s
	}
	envInt("SLIPWAY_CHAOS_PUSHES", &c.pushes, 1)
	envInt("SLIPWAY_CHAOS_KILLS", &c.kills, 0)
	envInt("SLIPWAY_CHAOS_PAUSES", &c.pauses, 0)
	envInt("SLIPWAY_CHAOS_DOCKER_SERVICES", &c.dockerServices, 1)
	envInt("SLIPWAY_CHAOS_SWARM_SERVICES", &c.swarmServices, 0)
	envInt("SLIPWAY_CHAOS_WORKERS", &c.workers, 1)
	envDuration("SLIPWAY_CHAOS_DURATION", &c.window)
	envDuration("SLIPWAY_CHAOS_DEADLINE", &c.deadline)
	return c
}

// chaosService is one service of the monorepo: its pipeline name and the container or Swarm
// service it deploys to.
type chaosService struct {
	name, kind, target, image string
}

// chaosEvent is one step of the schedule. Everything random about it is drawn when the schedule
// is made, so a seed replays the same schedule; which replica it hits depends on which are up.
type chaosEvent struct {
	at       time.Duration
	kind     string // push, kill, pause, pg-restart
	services []int  // push: the services whose files change
	pick     int    // kill, pause: which of the healthy replicas
	delay    time.Duration
}

func chaosSchedule(c chaosConfig, rng *rand.Rand, nServices int) []chaosEvent {
	within := func(from, to float64) time.Duration {
		return time.Duration((from + rng.Float64()*(to-from)) * float64(c.window))
	}
	var evs []chaosEvent
	for i := range c.pushes {
		ev := chaosEvent{kind: "push"}
		if i == 0 {
			ev.services = make([]int, nServices) // a new branch deploys all; every file is new too
			for j := range ev.services {
				ev.services[j] = j
			}
		} else {
			ev.at = within(0.05, 0.8)
			for j := range nServices {
				if rng.Float64() < 0.6 {
					ev.services = append(ev.services, j)
				}
			}
			if len(ev.services) == 0 {
				ev.services = []int{rng.IntN(nServices)}
			}
		}
		evs = append(evs, ev)
	}
	for range c.kills {
		// Back within 0.3 to 2 s, as systemd's RestartSec would.
		evs = append(evs, chaosEvent{kind: "kill", at: within(0.05, 1), pick: rng.IntN(1 << 20),
			delay: 300*time.Millisecond + time.Duration(rng.Int64N(int64(1700*time.Millisecond)))})
	}
	for range c.pauses {
		// Past the lease and the next rescue pass, so the work is surely taken over.
		evs = append(evs, chaosEvent{kind: "pause", at: within(0.05, 1), pick: rng.IntN(1 << 20),
			delay: c.lease + c.rescueEvery + 500*time.Millisecond + time.Duration(rng.Int64N(int64(2*time.Second)))})
	}
	evs = append(evs, chaosEvent{kind: "pg-restart", at: within(0.3, 0.7)})
	slices.SortStableFunc(evs, func(a, b chaosEvent) int { return cmp.Compare(a.at, b.at) })
	return evs
}

// chaosFigures counts what the driver did.
type chaosFigures struct {
	pushes, deliveries, retried, kills, pauses, pgRestarts int
	deferred                                               int // kills and pauses that waited for two healthy replicas
	runIDs                                                 []int64
}

// 3 replicas on one database, a monorepo of docker and Swarm services, pushes arriving while
// replicas are killed and paused past their lease and PostgreSQL restarts (issue #6). It prints
// the figures of the run and checks the invariants the queue, the workers and the targets promise.
func TestChaos(t *testing.T) {
	cfg := chaosConfigFromEnv(t)
	e := needDocker(t)
	engine, err := newEngineAPI(os.Getenv("DOCKER_HOST"))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	bin := binary(t)
	prefix := "chaos-" + e.id + "-"
	cfg.imagePrefix = "chaos-" + e.id + "/"
	t.Logf("chaos %s: seed %d (replay with SLIPWAY_CHAOS_SEED=%d); %d pushes, %d kills, %d pauses over %s; "+
		"%d docker + %d swarm services; %d replicas x %d workers; lease %s, rescue every %s, backoff %s",
		cfg.mode, cfg.seed, cfg.seed, cfg.pushes, cfg.kills, cfg.pauses, cfg.window, cfg.dockerServices,
		cfg.swarmServices, cfg.replicas, cfg.workers, cfg.lease, cfg.rescueEvery, cfg.backoffBase)
	rng := rand.New(rand.NewPCG(cfg.seed, 1))
	pick := rand.New(rand.NewPCG(cfg.seed, 2))

	services := chaosMakeServices(cfg, e, prefix)
	chaosCleanupDocker(t, e, prefix, cfg.imagePrefix)
	swarmIDs := chaosCreateSwarm(t, e, engine, services)
	pg := startChaosPG(t)
	repo := chaosRepo(t, e, services)

	logDir, err := os.MkdirTemp("", "slipway-chaos-logs-")
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replica logs kept in %s", logDir)
			return
		}
		_ = os.RemoveAll(logDir)
	})

	// The sampler starts before the first push and stops once everything settled.
	var docker []string
	for _, s := range services {
		if s.kind == "docker" {
			docker = append(docker, s.target)
		}
	}
	sampler := newChaosSampler(engine, prefix, docker, swarmIDs)
	sctx, stopSampler := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go sampler.run(sctx, 200*time.Millisecond, sampled)
	t.Cleanup(func() { stopSampler(); <-sampled })

	replicas := chaosStartReplicas(t, cfg, bin, pg.URL, repo.dir, e, logDir)
	rctx, stopReplicas := context.WithCancel(context.Background())
	var supervised sync.WaitGroup
	for _, r := range replicas {
		supervised.Add(1)
		go r.supervise(rctx, &supervised)
	}
	stopped := false
	stopAll := func() {
		if !stopped {
			stopped = true
			stopReplicas()
			supervised.Wait()
		}
	}
	t.Cleanup(stopAll)
	chaosAwaitUp(t, replicas, 2*time.Minute)

	db, err := pgxpool.New(context.Background(), pg.URL)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer db.Close()
	d := &chaosDriver{t: t, cfg: cfg, repo: repo, replicas: replicas, pick: pick, pg: pg, services: services, id: e.id, db: db}
	d.run(chaosSchedule(cfg, rng, len(services)))
	settled := d.settle(db, cfg.deadline)
	stopSampler()
	<-sampled

	facts := chaosFacts{cfg: cfg, services: services, watch: sampler.watch, metrics: map[string]float64{}, seen: map[string]bool{}}
	facts.targets = chaosTargets(engine, services, swarmIDs)
	facts.live = d.live()
	for _, r := range replicas {
		if st, _ := r.State(); st == replicaUp {
			r.scrape()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	state, err := chaosRetry(ctx, func() (chaosState, error) { return readChaosState(ctx, db) })
	if err != nil {
		t.Fatalf("harness: reading the database: %v", err)
	}
	facts.state = state
	stopAll()
	for _, r := range replicas {
		for k, v := range r.scraped {
			facts.metrics[k] += v
			facts.seen[k] = true
		}
	}
	if sampler.samples == 0 || sampler.failures > sampler.samples/10 {
		t.Fatalf("harness: the sampler read the engine %d times and failed %d times (last: %v)",
			sampler.samples, sampler.failures, sampler.lastErr)
	}
	invs := checkInvariants(facts)
	d.report(facts, invs, sampler, settled, logDir)
	if !settled {
		// Items unfinished or workers busy (or their metrics unreadable) until the deadline,
		// which only stops a hang: a hang it is.
		t.Errorf("the system did not settle within %s", cfg.deadline)
	}
}
