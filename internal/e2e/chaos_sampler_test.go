package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// engineAPI reads the Docker Engine API over its unix socket: cheap enough to ask five times a
// second, where a docker CLI per sample would eat one of the machine's two cores.
type engineAPI struct{ c *http.Client }

func newEngineAPI(host string) (*engineAPI, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return nil, fmt.Errorf("DOCKER_HOST %q: the chaos sampler reads only a unix:// engine", host)
	}
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &engineAPI{c: &http.Client{Transport: tr, Timeout: 10 * time.Second}}, nil
}

func (e *engineAPI) get(ctx context.Context, path string, filters map[string][]string, out any) error {
	u := "http://docker" + path
	if filters != nil {
		f, _ := json.Marshal(filters)
		u += "?filters=" + url.QueryEscape(string(f))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := e.c.Do(req)
	if err != nil {
		return fmt.Errorf("engine GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("engine GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

type engineContainer struct {
	ID     string `json:"Id"`
	Names  []string
	Image  string
	State  string
	Labels map[string]string
}

// runningContainers lists the running containers whose name contains prefix.
func (e *engineAPI) runningContainers(ctx context.Context, prefix string) ([]engineContainer, error) {
	var cs []engineContainer
	err := e.get(ctx, "/containers/json", map[string][]string{"name": {prefix}, "status": {"running"}}, &cs)
	return cs, err
}

// containerImage is the image reference a container was started from (Slipway's: repo@sha256:…).
func (e *engineAPI) containerImage(ctx context.Context, id string) (string, error) {
	var c struct{ Config struct{ Image string } }
	err := e.get(ctx, "/containers/"+id+"/json", nil, &c)
	return c.Config.Image, err
}

type engineTask struct {
	ID        string
	ServiceID string
	Status    struct{ State string }
	Spec      struct {
		ContainerSpec struct{ Image string }
	}
}

func (e *engineAPI) tasks(ctx context.Context, serviceIDs []string) ([]engineTask, error) {
	var ts []engineTask
	err := e.get(ctx, "/tasks", map[string][]string{"service": serviceIDs}, &ts)
	return ts, err
}

// serviceImage is the image of a Swarm service's spec, and its id.
func (e *engineAPI) service(ctx context.Context, name string) (id, image string, err error) {
	var s struct {
		ID   string
		Spec struct {
			TaskTemplate struct {
				ContainerSpec struct{ Image string }
			}
		}
	}
	err = e.get(ctx, "/services/"+name, nil, &s)
	return s.ID, s.Spec.TaskTemplate.ContainerSpec.Image, err
}

// belongsTo reports whether a container is one of the docker service whose container is name:
// the container itself, one Slipway set aside or is starting (name-slipway-…), or one labelled
// for it.
func belongsTo(c engineContainer, name string) bool {
	if c.Labels["dev.slipway.target"] == name {
		return true
	}
	for _, n := range c.Names {
		n = strings.TrimPrefix(n, "/")
		if n == name || strings.HasPrefix(n, name+"-slipway-") {
			return true
		}
	}
	return false
}

// serviceWatch is what the sampler saw of one service.
type serviceWatch struct {
	kind        string // docker or swarm
	seen        bool   // something ran at least once (docker containers appear with the first deploy)
	downSince   time.Time
	longestDown time.Duration
	longestAt   time.Time
	stillDown   bool      // down when sampling stopped
	downFrom    time.Time // since when, if so
	maxRunning  int
	doubles     int      // samples with two or more running
	doubleSeen  []string // the first few of them
}

// chaosSampler watches every service's running containers or tasks throughout the test.
type chaosSampler struct {
	api      *engineAPI
	prefix   string
	docker   []string          // container names
	swarm    map[string]string // service id → name
	mu       sync.Mutex
	watch    map[string]*serviceWatch
	samples  int
	failures int
	lastErr  error
}

func newChaosSampler(api *engineAPI, prefix string, docker []string, swarm map[string]string) *chaosSampler {
	s := &chaosSampler{api: api, prefix: prefix, docker: docker, swarm: swarm, watch: map[string]*serviceWatch{}}
	for _, n := range docker {
		s.watch[n] = &serviceWatch{kind: "docker"}
	}
	for _, n := range swarm {
		s.watch[n] = &serviceWatch{kind: "swarm"}
	}
	return s
}

// run samples every interval until ctx ends; done is closed after the last sample.
func (s *chaosSampler) run(ctx context.Context, every time.Duration, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sample(ctx)
		select {
		case <-ctx.Done():
			s.finish(time.Now())
			return
		case <-t.C:
		}
	}
}

func (s *chaosSampler) sample(ctx context.Context) {
	counts, names, err := s.count(ctx)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.failures++
			s.lastErr = err
		}
		return
	}
	s.samples++
	for svc, w := range s.watch {
		n := counts[svc]
		w.maxRunning = max(w.maxRunning, n)
		if n >= 2 {
			w.doubles++
			if len(w.doubleSeen) < 5 {
				w.doubleSeen = append(w.doubleSeen, fmt.Sprintf("%s: %s",
					now.Format("15:04:05.0"), strings.Join(names[svc], ", ")))
			}
		}
		switch {
		case n == 0 && w.seen && w.downSince.IsZero():
			w.downSince = now
		case n > 0:
			w.seen = true
			if !w.downSince.IsZero() {
				w.closeGap(now)
			}
		}
	}
}

func (w *serviceWatch) closeGap(now time.Time) {
	if d := now.Sub(w.downSince); d > w.longestDown {
		w.longestDown, w.longestAt = d, w.downSince
	}
	w.downSince = time.Time{}
}

// finish closes the gaps still open when sampling stops.
func (s *chaosSampler) finish(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.watch {
		if !w.downSince.IsZero() {
			w.stillDown, w.downFrom = true, w.downSince
			w.closeGap(now)
		}
	}
}

// count returns, per service, how many containers or tasks run, and their names.
func (s *chaosSampler) count(ctx context.Context) (map[string]int, map[string][]string, error) {
	counts, names := map[string]int{}, map[string][]string{}
	cs, err := s.api.runningContainers(ctx, s.prefix)
	if err != nil {
		return nil, nil, err
	}
	for _, c := range cs {
		if c.State != "running" {
			continue
		}
		for _, svc := range s.docker {
			if belongsTo(c, svc) {
				counts[svc]++
				names[svc] = append(names[svc], strings.TrimPrefix(strings.Join(c.Names, ","), "/")+" "+shortImage(c.Image))
			}
		}
	}
	if len(s.swarm) == 0 {
		return counts, names, nil
	}
	ts, err := s.api.tasks(ctx, slices.Sorted(maps.Keys(s.swarm)))
	if err != nil {
		return nil, nil, err
	}
	for _, k := range ts {
		if svc, ok := s.swarm[k.ServiceID]; ok && k.Status.State == "running" {
			counts[svc]++
			names[svc] = append(names[svc], "task "+k.ID[:min(12, len(k.ID))]+" "+shortImage(k.Spec.ContainerSpec.Image))
		}
	}
	return counts, names, nil
}

// shortImage keeps a reference readable in a report: the repository's last part and 12 digits.
func shortImage(ref string) string {
	repo, digest, ok := strings.Cut(ref, "@")
	if i := strings.LastIndexByte(repo, '/'); i >= 0 {
		repo = repo[i+1:]
	}
	if !ok {
		return repo
	}
	return repo + "@" + shortDigest(digest)
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	return d[:min(12, len(d))]
}

// digestOf is the sha256:… part of a pinned reference, "" for one without.
func digestOf(ref string) string {
	_, d, _ := strings.Cut(ref, "@")
	return d
}
