package dockercli

import (
	"fmt"
	"regexp"
	"time"
)

// The pipeline validates names already; checking again where they become arguments keeps a name
// that starts with "-" from ever reaching docker as a flag. The name pattern is the one dockerd
// enforces for containers and services.
var (
	validName    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	pinnedByHash = regexp.MustCompile(`^[a-zA-Z0-9][^\s@]*@sha256:[0-9a-f]{64}$`)
)

// CheckName rejects a container or service name docker would not accept; kind names it in the
// error ("container", "swarm service").
func CheckName(kind, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid %s name %q", kind, name)
	}
	return nil
}

// CheckPinned rejects an image reference that is not repository@sha256:…: targets deploy exactly
// the image that was built and pushed, never whatever a tag points at by then.
func CheckPinned(image string) error {
	if !pinnedByHash.MatchString(image) {
		return fmt.Errorf("image %q is not pinned by digest (repository@sha256:…)", image)
	}
	return nil
}

// CheckDurations rejects a negative setting among a target's durations; component names the
// target in the error ("docker target").
func CheckDurations(component string, ds map[string]time.Duration) error {
	for name, d := range ds {
		if d < 0 {
			return fmt.Errorf("%s: %s is negative (%s)", component, name, d)
		}
	}
	return nil
}
