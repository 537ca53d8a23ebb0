package pipeline

import (
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// file decodes the document body. Type and key problems land in d.errs; value rules are checked
// afterwards on the File by validateFile, which Validate shares.
func (d *decoder) file(body ast.Node) *File {
	f := &File{}
	d.pos[""] = nodePos(body)
	entries, ok := d.mapping(body, "")
	if !ok {
		return f
	}
	known := d.fields(entries, "services")
	s, ok := known["services"]
	if !ok {
		d.errorf(nodePos(body), "", "services is required")
		return f
	}
	services, ok := d.mapping(s.value, s.path)
	if !ok {
		return f
	}
	if len(services) > MaxServices {
		// Stop here: decoding and checking thousands of services is work a hostile file should
		// not get for free.
		d.errorf(s.at, s.path, "%d services; the limit is %d", len(services), MaxServices)
		return f
	}
	for _, e := range services {
		d.record(e)
		// A broken service is kept as a stub: it still counts, and the problems validation finds
		// in it are dropped as follow-ups of the one reported.
		f.Services = append(f.Services, d.service(e))
	}
	return f
}

// service decodes one service; a broken one comes back as a stub with just its name.
func (d *decoder) service(e entry) Service {
	s := Service{Name: e.key}
	entries, ok := d.mapping(e.value, e.path)
	if !ok {
		return s
	}
	known := d.fields(entries, "paths", "dockerfile", "context", "build_args", "target", "image", "environments")
	for key, v := range known {
		switch key {
		case "paths":
			s.Paths, ok = d.strings(v.value, v.path)
			if ok && len(s.Paths) == 0 {
				d.errorf(nodePos(v.value), v.path, "must not be empty; leave paths out to deploy on every push")
			}
		case "dockerfile":
			s.Dockerfile, _ = d.str(v.value, v.path)
		case "context":
			s.Context, _ = d.str(v.value, v.path)
		case "build_args":
			s.BuildArgs, _ = d.stringMap(v.value, v.path)
		case "target":
			s.Stage, _ = d.str(v.value, v.path)
		case "image":
			s.Image, _ = d.str(v.value, v.path)
		case "environments":
			envs, ok := d.mapping(v.value, v.path)
			if !ok {
				continue
			}
			if len(envs) > maxEnvironments {
				d.errorf(v.at, v.path, "%d environments; the limit is %d", len(envs), maxEnvironments)
				continue
			}
			for _, ee := range envs {
				d.record(ee)
				s.Environments = append(s.Environments, d.environment(ee))
			}
		}
	}
	return s
}

// environment decodes one environment; a broken one comes back as a stub, as for services.
func (d *decoder) environment(e entry) Environment {
	env := Environment{Name: e.key}
	entries, ok := d.mapping(e.value, e.path)
	if !ok {
		return env
	}
	known := d.fields(entries, "branch", deploy.PlatformECS, deploy.PlatformSwarm, deploy.PlatformDocker)
	for key, v := range known {
		switch key {
		case "branch":
			env.Branch, _ = d.str(v.value, v.path)
		case deploy.PlatformECS:
			env.ECS = d.ecs(v)
		case deploy.PlatformSwarm:
			env.Swarm = d.swarm(v)
		case deploy.PlatformDocker:
			env.Docker = d.docker(v)
		}
	}
	return env
}

func (d *decoder) ecs(e entry) *deploy.ECSService {
	t := &deploy.ECSService{} // even when broken, so that the environment still counts one target
	entries, ok := d.mapping(e.value, e.path)
	if !ok {
		return t
	}
	for key, v := range d.fields(entries, "cluster", "service", "container") {
		switch key {
		case "cluster":
			t.Cluster, _ = d.str(v.value, v.path)
		case "service":
			t.Service, _ = d.str(v.value, v.path)
		case "container":
			t.Container, _ = d.str(v.value, v.path)
		}
	}
	return t
}

func (d *decoder) swarm(e entry) *deploy.SwarmService {
	t := &deploy.SwarmService{}
	entries, ok := d.mapping(e.value, e.path)
	if !ok {
		return t
	}
	if v, ok := d.fields(entries, "service")["service"]; ok {
		t.Service, _ = d.str(v.value, v.path)
	}
	return t
}

func (d *decoder) docker(e entry) *deploy.Container {
	t := &deploy.Container{}
	entries, ok := d.mapping(e.value, e.path)
	if !ok {
		return t
	}
	for key, v := range d.fields(entries, "container", "ports", "env", "network", "health_timeout", "command") {
		switch key {
		case "container":
			t.Container, _ = d.str(v.value, v.path)
		case "ports":
			t.Ports = d.ports(v.value, v.path)
		case "env":
			t.Env, _ = d.stringMap(v.value, v.path)
		case "network":
			t.Network, _ = d.str(v.value, v.path)
		case "health_timeout":
			t.HealthTimeout = d.duration(v.value, v.path)
		case "command":
			t.Command, _ = d.values(v.value, v.path)
		}
	}
	return t
}

// ports accepts "8081:80" strings and bare port numbers.
func (d *decoder) ports(n ast.Node, path string) []string {
	items, ok := d.sequence(n, path)
	if !ok {
		return nil
	}
	var out []string
	for i, item := range items {
		p := index(path, i)
		if _, ok := item.(*ast.IntegerNode); ok {
			out = append(out, item.GetToken().Value)
			continue
		}
		s, _ := d.str(item, p)
		out = append(out, s) // "" for a broken item keeps later indices right
	}
	return out
}

// duration decodes a Go duration like "30s"; a bare number is refused because its unit would be
// a guess.
func (d *decoder) duration(n ast.Node, path string) time.Duration {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		d.errorf(nodePos(n), path, "must be a duration with a unit, like 30s or 2m")
		return 0
	}
	s, ok := d.str(n, path)
	if !ok {
		return 0
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 || v > maxHealthTimeoutSeconds*time.Second {
		d.errorf(nodePos(n), path, "must be a positive duration of at most 1h, like 30s or 2m (got %q)", s)
		return 0
	}
	return v
}
