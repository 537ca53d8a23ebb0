package pipeline

import (
	"reflect"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/internal/deploy"
)

func TestPlan(t *testing.T) {
	f, err := Parse(".slipway.yml", readExample(t))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		branch  string
		changed []string
		all     bool
		want    []string // "service/environment"
	}{
		{"api path on main", "main", []string{"services/api/main.go"}, false, []string{"api/production", "web/demo", "worker/production"}},
		{"libs path on develop", "develop", []string{"libs/x/y.go"}, false, []string{"api/staging"}},
		{"unrelated path on main", "main", []string{"docs/README.md"}, false, []string{"web/demo", "worker/production"}},
		{"nothing changed", "main", nil, false, []string{"web/demo", "worker/production"}},
		{"prefix is not a match", "develop", []string{"services/apix/main.go"}, false, nil},
		{"all ignores paths", "develop", nil, true, []string{"api/staging"}},
		{"all on main", "main", nil, true, []string{"api/production", "web/demo", "worker/production"}},
		{"unknown branch", "feature/x", []string{"services/api/main.go"}, true, nil},
		{"branch prefix is not a match", "mainline", nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, spec := range f.Plan(tt.branch, tt.changed, tt.all) {
				got = append(got, spec.Destination.Service+"/"+spec.Destination.Environment)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Plan = %v, want %v", got, tt.want)
			}
		})
	}
}

// Every service and environment of the file is either planned or skipped with a reason.
func TestPlanWithSkips(t *testing.T) {
	f, err := Parse(".slipway.yml", readExample(t))
	if err != nil {
		t.Fatal(err)
	}
	specs, skips := f.PlanWithSkips("develop", []string{"libs/x/y.go"}, false)
	got := map[string]string{}
	for _, s := range skips {
		got[s.Service+"/"+s.Environment] = s.Reason
	}
	want := map[string]string{
		"api/production":    "it deploys from branch main, not develop",
		"web/demo":          "it deploys from branch main, not develop",
		"worker/production": "it deploys from branch main, not develop",
	}
	for k, reason := range want {
		if !strings.HasPrefix(got[k], reason) {
			t.Errorf("skip %s: %q, want %q", k, got[k], reason)
		}
	}
	if len(specs) != 1 || len(skips) != len(want) {
		t.Errorf("%d specs and skips %v", len(specs), got)
	}
}

func TestPlanTargets(t *testing.T) {
	f, err := Parse(".slipway.yml", readExample(t))
	if err != nil {
		t.Fatal(err)
	}
	got := f.Plan("main", nil, true)
	refs := []string{}
	for _, spec := range got {
		refs = append(refs, spec.Destination.Ref())
	}
	if want := []string{"ecs:prod/api", "docker:web", "swarm:worker"}; !reflect.DeepEqual(refs, want) {
		t.Errorf("refs = %v, want %v", refs, want)
	}
	if d := got[0].Destination; d.Platform != deploy.PlatformECS || d.ECS == nil || d.ECS.Container != "api" || got[0].Build.Image == "" {
		t.Errorf("ecs target = %+v", got[0])
	}
	// A Spec is a copy: changing it leaves the File alone.
	got[1].Destination.Docker.Env["A"] = "changed"
	got[1].Destination.Docker.Ports[0] = "1:1"
	if d := f.Service("web").Environments[0].Docker; d.Env["A"] != "b" || d.Ports[0] != "8081:80" {
		t.Errorf("Plan's Spec shares state with the File: %+v", d)
	}
}

func TestPlanBranchGlobsAndOrder(t *testing.T) {
	src := `services:
  zeta:
    image: x/zeta
    environments:
      release: {branch: "release/*", swarm: {service: zeta-rel}}
      any: {branch: "**", swarm: {service: zeta-any}}
  alpha:
    image: x/alpha
    paths: [alpha/]
    environments:
      deep: {branch: "feature/**", docker: {container: alpha}}
`
	f, err := Parse("f", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		branch  string
		changed []string
		want    []string
	}{
		{"release/1.2", []string{"zeta/x"}, []string{"zeta/any", "zeta/release"}},
		{"release/1.2/rc", nil, []string{"zeta/any"}},
		{"feature/a/b", []string{"alpha/main.go"}, []string{"alpha/deep", "zeta/any"}},
		{"feature/a/b", []string{"alphabet/main.go"}, []string{"zeta/any"}},
	}
	for _, tt := range tests {
		var got []string
		for _, spec := range f.Plan(tt.branch, tt.changed, false) {
			got = append(got, spec.Destination.Service+"/"+spec.Destination.Environment)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Plan(%q, %v) = %v, want %v", tt.branch, tt.changed, got, tt.want)
		}
	}
}

func TestPlanUnsortedFile(t *testing.T) {
	// A File built in code, not sorted: Plan still orders by service, then environment.
	f := &File{Services: []Service{
		{Name: "b", Environments: []Environment{
			{Name: "y", Branch: "main", Swarm: &deploy.SwarmService{Service: "b"}},
			{Name: "x", Branch: "main", Swarm: &deploy.SwarmService{Service: "b"}},
		}},
		{Name: "a", Environments: []Environment{{Name: "z", Branch: "main", Swarm: &deploy.SwarmService{Service: "a"}}}},
	}}
	var got []string
	for _, spec := range f.Plan("main", nil, false) {
		got = append(got, spec.Destination.Service+"/"+spec.Destination.Environment)
	}
	if want := []string{"a/z", "b/x", "b/y"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Plan = %v, want %v", got, want)
	}
}
