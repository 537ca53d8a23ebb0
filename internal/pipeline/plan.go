package pipeline

import (
	"cmp"
	"slices"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Plan returns the deployments a push asks for: one Spec per (service, environment) whose
// branch pattern matches branch (the name without refs/heads/) and whose service's paths match at
// least one of changed (repository-relative, /-separated). A service without paths is deployed on
// every push, even one that changed nothing (an empty commit is a common way to redeploy). all
// ignores paths; the caller sets it when it cannot know what changed (a new branch, a force push).
// Specs come sorted by service, then environment.
func (f *File) Plan(branch string, changed []string, all bool) []deploy.Spec {
	services := make([]*Service, len(f.Services))
	for i := range f.Services {
		services[i] = &f.Services[i]
	}
	slices.SortStableFunc(services, func(a, b *Service) int { return cmp.Compare(a.Name, b.Name) })

	var specs []deploy.Spec
	for _, s := range services {
		if !all && !s.touched(changed) {
			continue
		}
		envs := make([]*Environment, len(s.Environments))
		for i := range s.Environments {
			envs[i] = &s.Environments[i]
		}
		slices.SortStableFunc(envs, func(a, b *Environment) int { return cmp.Compare(a.Name, b.Name) })
		for _, e := range envs {
			if e.Platform() != "" && matchGlob(e.Branch, branch) {
				specs = append(specs, spec(s, e))
			}
		}
	}
	return specs
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
