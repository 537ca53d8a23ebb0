package registry

import (
	"fmt"
	"regexp"
	"strings"
)

// DockerHub is the registry host of references without one ("alpine", "org/app").
const DockerHub = "registry-1.docker.io"

// Reference is a parsed image reference.
type Reference struct {
	Host       string // "host[:port]": DockerHub when the reference names none
	Repository string // "path/name" inside the registry; "library/name" for a single Hub name
	Tag        string // "" when only a digest was given; "latest" when neither was
	Digest     string // "sha256:…", or ""
}

// String is the reference in full, host included.
func (r Reference) String() string {
	s := r.Host + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

var (
	// The grammar of github.com/distribution/reference, without its length limits.
	pathComponentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE           = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestRE        = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
	hostRE          = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$`)
)

// ParseReference splits "host[:port]/path/name[:tag][@digest]" with docker's rule: the first
// component is a registry host when it contains a "." or a ":" or is "localhost"; otherwise the
// registry is Docker Hub, where a single name lives under "library/". docker.io and
// index.docker.io mean Docker Hub too.
func ParseReference(ref string) (Reference, error) {
	var r Reference
	rest := ref
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		r.Digest = rest[i+1:]
		rest = rest[:i]
		if !digestRE.MatchString(r.Digest) {
			return Reference{}, fmt.Errorf("image reference %q: invalid digest %q", ref, r.Digest)
		}
	}
	// A tag is after the last ":" that follows the last "/"; a ":" before it belongs to a port.
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		r.Tag = rest[i+1:]
		rest = rest[:i]
		if !tagRE.MatchString(r.Tag) {
			return Reference{}, fmt.Errorf("image reference %q: invalid tag %q", ref, r.Tag)
		}
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	first, remainder, hasSlash := strings.Cut(rest, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if !hostRE.MatchString(first) {
			return Reference{}, fmt.Errorf("image reference %q: invalid registry host %q", ref, first)
		}
		r.Host, r.Repository = first, remainder
	} else {
		r.Host, r.Repository = DockerHub, rest
	}
	if r.Host == "docker.io" || r.Host == "index.docker.io" {
		r.Host = DockerHub
	}
	if r.Host == DockerHub && !strings.Contains(r.Repository, "/") {
		r.Repository = "library/" + r.Repository
	}
	if r.Repository == "" {
		return Reference{}, fmt.Errorf("image reference %q: no repository name", ref)
	}
	for _, c := range strings.Split(r.Repository, "/") {
		if !pathComponentRE.MatchString(c) {
			return Reference{}, fmt.Errorf("image reference %q: invalid repository component %q", ref, c)
		}
	}
	return r, nil
}
