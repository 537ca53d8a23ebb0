package pipeline

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/internal/deploy"
)

// Name rules. Service and environment names end up in database rows, metric labels, URLs and
// image tags, so they are kept to a safe lowercase alphabet. Target names follow what the
// platform itself accepts.
var (
	nameRE          = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	ecsNameRE       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	swarmServiceRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)
	containerNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{1,127}$`)
	networkRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	stageRE         = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	varNameRE       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

	// imageRE is Docker's reference grammar for a repository name (distribution/reference) with
	// no tag and no digest: an optional registry host[:port], then lowercase path components.
	imageRE = regexp.MustCompile(`^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

	// portRE is docker run -p: [ip:][hostPort[-end]:]containerPort[-end][/proto].
	portRE = regexp.MustCompile(`^(?:(\[[0-9A-Fa-f:.]+\]|[0-9]+(?:\.[0-9]+){3}):)?(?:([0-9]+(?:-[0-9]+)?)?:)?([0-9]+(?:-[0-9]+)?)(?:/(?:tcp|udp|sctp))?$`)
)

// Validate checks a File against the same rules Parse applies, for a File that did not come from
// Parse (built in code, or read back from the database).
func (f *File) Validate() error {
	errs := validateFile(f)
	for _, e := range errs {
		e.File = f.name
	}
	return errs.truncate(f.name).err()
}

func validateFile(f *File) ErrorList {
	c := &checker{}
	switch n := len(f.Services); {
	case n == 0:
		c.add("services", "at least one service is required")
	case n > MaxServices:
		c.add("services", "%d services; the limit is %d", n, MaxServices)
	}
	seen := map[string]bool{}
	for i := range f.Services {
		s := &f.Services[i]
		p := child("services", s.Name)
		if seen[s.Name] {
			c.add(p, "service defined twice")
		}
		seen[s.Name] = true
		validateService(s, p, c)
	}
	return c.errs
}

// checker collects the problems validateFile finds.
type checker struct{ errs ErrorList }

func (c *checker) add(path, format string, args ...any) {
	c.errs = append(c.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...), subject: path})
}

// missing reports a required key that is absent: the message is about the parent mapping, the
// subject is the key.
func (c *checker) missing(parent, key, msg string) {
	c.errs = append(c.errs, &Error{Path: parent, Msg: cmp.Or(msg, key+" is required"), subject: child(parent, key)})
}

func validateService(s *Service, p string, c *checker) {
	if !nameRE.MatchString(s.Name) {
		c.add(p, "service name must match %s", nameRE)
	}
	switch {
	case s.Image == "":
		c.missing(p, "image", "")
	default:
		if msg := checkImage(s.Image); msg != "" {
			c.add(child(p, "image"), "%s", msg)
		}
	}
	if len(s.Paths) > maxPaths {
		c.add(child(p, "paths"), "%d entries; the limit is %d", len(s.Paths), maxPaths)
	}
	for i, g := range s.Paths {
		if msg := checkGlob(g); msg != "" {
			c.add(index(child(p, "paths"), i), "%s", msg)
		}
	}
	if s.Context != "" {
		if msg := checkRepoPath(s.Context); msg != "" {
			c.add(child(p, "context"), "%s", msg)
		}
	}
	if s.Dockerfile != "" {
		if msg := checkRepoPath(s.Dockerfile); msg != "" {
			c.add(child(p, "dockerfile"), "%s", msg)
		} else if cleanRepoPath(s.Dockerfile) == "." {
			c.add(child(p, "dockerfile"), "must name a file")
		}
	}
	if s.Stage != "" && !stageRE.MatchString(s.Stage) {
		c.add(child(p, "target"), "build stage must match %s", stageRE)
	}
	checkVars(s.BuildArgs, child(p, "build_args"), c)

	switch n := len(s.Environments); {
	case n == 0:
		c.missing(p, "environments", "at least one environment is required")
	case n > maxEnvironments:
		c.add(child(p, "environments"), "%d environments; the limit is %d", n, maxEnvironments)
	}
	seen := map[string]bool{}
	for i := range s.Environments {
		e := &s.Environments[i]
		ep := child(child(p, "environments"), e.Name)
		if seen[e.Name] {
			c.add(ep, "environment defined twice")
		}
		seen[e.Name] = true
		validateEnvironment(e, ep, c)
	}
}

func validateEnvironment(e *Environment, p string, c *checker) {
	if !nameRE.MatchString(e.Name) {
		c.add(p, "environment name must match %s", nameRE)
	}
	if e.Branch == "" {
		c.missing(p, "branch", "")
	} else if msg := checkBranch(e.Branch); msg != "" {
		c.add(child(p, "branch"), "%s", msg)
	}
	n := 0
	for _, set := range []bool{e.ECS != nil, e.Swarm != nil, e.Docker != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.add(p, "exactly one target (ecs, swarm, docker) is required, found %d", n)
	}
	if t := e.ECS; t != nil {
		tp := child(p, deploy.PlatformECS)
		if t.Cluster != "" && !ecsNameRE.MatchString(t.Cluster) {
			c.add(child(tp, "cluster"), "must be an ECS cluster name (not an ARN) matching %s", ecsNameRE)
		}
		requireName(t.Service, ecsNameRE, tp, "service", c)
		requireName(t.Container, ecsNameRE, tp, "container", c)
	}
	if t := e.Swarm; t != nil {
		requireName(t.Service, swarmServiceRE, child(p, deploy.PlatformSwarm), "service", c)
	}
	if t := e.Docker; t != nil {
		validateDocker(t, child(p, deploy.PlatformDocker), c)
	}
}

func validateDocker(t *deploy.Container, p string, c *checker) {
	requireName(t.Container, containerNameRE, p, "container", c)
	if t.Network != "" && !networkRE.MatchString(t.Network) {
		c.add(child(p, "network"), "must match %s", networkRE)
	}
	if len(t.Ports) > maxListItems {
		c.add(child(p, "ports"), "%d entries; the limit is %d", len(t.Ports), maxListItems)
	}
	for i, port := range t.Ports {
		if !validPort(port) {
			c.add(index(child(p, "ports"), i), "%q is not a port mapping like \"8080:80\", \"127.0.0.1:8080:80/tcp\" or 80", port)
		}
	}
	checkVars(t.Env, child(p, "env"), c)
	if t.HealthTimeout < 0 || t.HealthTimeout > maxHealthTimeoutSeconds*time.Second {
		c.add(child(p, "health_timeout"), "must be a positive duration of at most 1h")
	}
	if len(t.Command) > maxListItems {
		c.add(child(p, "command"), "%d arguments; the limit is %d", len(t.Command), maxListItems)
	}
	for i, arg := range t.Command {
		if len(arg) > maxArgLen || strings.ContainsRune(arg, 0) {
			c.add(index(child(p, "command"), i), "must be at most %d bytes without NUL characters", maxArgLen)
		}
	}
}

func requireName(v string, re *regexp.Regexp, p, key string, c *checker) {
	switch {
	case v == "":
		c.missing(p, key, "")
	case !re.MatchString(v):
		c.add(child(p, key), "must match %s", re)
	}
}

// checkVars checks build_args and env: names a shell and Docker accept, bounded values.
func checkVars(vars map[string]string, p string, c *checker) {
	if len(vars) > maxMapEntries {
		c.add(p, "%d entries; the limit is %d", len(vars), maxMapEntries)
	}
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		kp := child(p, k)
		if len(k) > maxKeyLen || !varNameRE.MatchString(k) {
			c.add(kp, "name must match %s and be at most %d bytes", varNameRE, maxKeyLen)
		}
		if v := vars[k]; len(v) > maxValueLen || strings.ContainsRune(v, 0) {
			c.add(kp, "value must be at most %d bytes without NUL characters", maxValueLen)
		}
	}
}

func checkImage(ref string) string {
	last := ref[strings.LastIndex(ref, "/")+1:]
	switch {
	case len(ref) > maxRefLen:
		return fmt.Sprintf("image reference is longer than %d bytes", maxRefLen)
	case strings.Contains(ref, "@"):
		return "image must not include a digest: the server records the digest it pushes"
	case strings.Contains(last, ":"):
		return "image must not include a tag: the server tags each build with its commit"
	case !imageRE.MatchString(ref):
		return fmt.Sprintf("%q is not an image repository like registry.example.com/team/app (lowercase path, no tag)", ref)
	}
	return ""
}

func checkBranch(b string) string {
	switch {
	case len(b) > maxRefLen:
		return fmt.Sprintf("longer than %d bytes", maxRefLen)
	case strings.HasPrefix(b, "refs/"):
		return "give the branch name without refs/heads/"
	case strings.ContainsAny(b, " \t\r\n\\\x00~^:") || strings.HasPrefix(b, "/"):
		return "must be a branch name or glob (no spaces, \\, ~, ^, : or leading /)"
	}
	if err := validGlob(b); err != nil {
		return err.Error()
	}
	return ""
}

func validPort(s string) bool {
	m := portRE.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	if ip := strings.Trim(m[1], "[]"); ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return false
		}
	}
	for _, r := range []string{m[2], m[3]} {
		if r == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(r, "-")
		a, errA := strconv.Atoi(lo)
		b := a
		var errB error
		if isRange {
			b, errB = strconv.Atoi(hi)
		}
		if errA != nil || errB != nil || a < 1 || b > 65535 || b < a {
			return false
		}
	}
	return true
}
