package pipeline

import (
	"cmp"
	"slices"
	"strings"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Plan returns the deployments a push asks for: one Spec per (service, environment) whose
// branch pattern matches branch (the name without refs/heads/) and whose service's paths match at
// least one of changed (repository-relative, /-separated). A service without paths is deployed on
// every push, even one that changed nothing (an empty commit is a common way to redeploy). all
// ignores paths; the caller sets it when it cannot know what changed (a new branch, a force push).
// Specs come sorted by service, then environment.
func (f *File) Plan(branch string, changed []string, all bool) []deploy.Spec {
	specs, _ := f.PlanWithSkips(branch, changed, all)
	return specs
}

// PlanWithSkips is Plan that also says which services and environments the push leaves alone,
// and why, in the same order.
func (f *File) PlanWithSkips(branch string, changed []string, all bool) ([]deploy.Spec, []deploy.Skip) {
	services := make([]*Service, len(f.Services))
	for i := range f.Services {
		services[i] = &f.Services[i]
	}
	slices.SortStableFunc(services, func(a, b *Service) int { return cmp.Compare(a.Name, b.Name) })

	var specs []deploy.Spec
	var skips []deploy.Skip
	for _, s := range services {
		if !all && !s.touched(changed) {
			skips = append(skips, deploy.Skip{Service: s.Name,
				Reason: "no changed file matches its paths (" + strings.Join(s.Paths, ", ") + ")"})
			continue
		}
		envs := make([]*Environment, len(s.Environments))
		for i := range s.Environments {
			envs[i] = &s.Environments[i]
		}
		slices.SortStableFunc(envs, func(a, b *Environment) int { return cmp.Compare(a.Name, b.Name) })
		for _, e := range envs {
			switch {
			case e.Platform() == "":
				skips = append(skips, deploy.Skip{Service: s.Name, Environment: e.Name, Reason: "it names no target"})
			case !matchGlob(e.Branch, branch):
				skips = append(skips, deploy.Skip{Service: s.Name, Environment: e.Name,
					Reason: "it deploys from branch " + e.Branch + ", not " + branch})
			default:
				specs = append(specs, spec(s, e))
			}
		}
	}
	return specs, skips
}

// touched reports whether a push that changed these files concerns the service.
func (s *Service) touched(changed []string) bool {
	if len(s.Paths) == 0 {
		return true
	}
	for _, name := range changed {
		for _, g := range s.Paths {
			if matchGlob(g, name) {
				return true
			}
		}
	}
	return false
}
