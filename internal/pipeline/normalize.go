package pipeline

import (
	"cmp"
	"path"
	"slices"
)

// Defaults filled by Parse.
const (
	DefaultContext    = "."
	DefaultECSCluster = "default" // what ECS itself calls the cluster used when none is named
	DefaultNetwork    = "host"    // the only network the quickstart's engine has
)

// normalize fills defaults, cleans paths and sorts by name, so that two files meaning the same
// thing parse to the same File, and stored Files compare well. It runs on a valid File only.
func (f *File) normalize() {
	slices.SortFunc(f.Services, func(a, b Service) int { return cmp.Compare(a.Name, b.Name) })
	for i := range f.Services {
		s := &f.Services[i]
		s.BuildArgs = nilIfEmpty(s.BuildArgs)
		s.Context = cleanRepoPath(cmp.Or(s.Context, DefaultContext))
		if s.Dockerfile == "" {
			s.Dockerfile = path.Join(s.Context, "Dockerfile")
		}
		s.Dockerfile = cleanRepoPath(s.Dockerfile)
		for j, g := range s.Paths {
			s.Paths[j] = cleanGlob(g)
		}
		slices.SortFunc(s.Environments, func(a, b Environment) int { return cmp.Compare(a.Name, b.Name) })
		for j := range s.Environments {
			e := &s.Environments[j]
			if e.ECS != nil {
				e.ECS.Cluster = cmp.Or(e.ECS.Cluster, DefaultECSCluster)
			}
			if e.Docker != nil {
				e.Docker.Network = cmp.Or(e.Docker.Network, DefaultNetwork)
				e.Docker.Env = nilIfEmpty(e.Docker.Env)
				if len(e.Docker.Ports) == 0 {
					e.Docker.Ports = nil
				}
				if len(e.Docker.Command) == 0 {
					e.Docker.Command = nil
				}
			}
		}
	}
}

// nilIfEmpty makes "env: {}" and no env the same File, as they are once stored as JSON.
func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
