package dockercli

import (
	"errors"
	"strings"
)

// Error is a docker command that ran (or was meant to) and failed. It names the subcommand only:
// arguments can hold environment values (docker run --env) or build args that must not reach a
// log.
type Error struct {
	Command  string // "build", "service update": the subcommand, without its arguments
	ExitCode int    // -1 when docker did not exit by itself (killed, or never started)
	Stderr   string // last non-blank lines of standard error, scrubbed: what IsNotFound reads
	Output   string // last non-blank lines of both streams, scrubbed
	Err      error
}

func (e *Error) Error() string {
	msg := "docker"
	if e.Command != "" {
		msg += " " + e.Command
	}
	msg += ": " + e.Err.Error()
	// One line reads best inline, as docker printed it; several read best below.
	switch {
	case e.Output == "":
	case !strings.Contains(e.Output, "\n"):
		msg += ": " + e.Output
	default:
		msg += "; last output:\n" + e.Output
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether err is docker saying the object it was asked about does not exist.
// The CLI has no exit code for that, and its wording changed between versions ("No such
// container", "no such service", "No such object"), so this is a case-insensitive match.
func IsNotFound(err error) bool {
	var de *Error
	return errors.As(err, &de) && strings.Contains(strings.ToLower(de.Stderr), "no such ")
}

// managementCommands take a second word that is part of the subcommand ("service update"); after
// any other first word comes an argument ("push registry/app:v1").
var managementCommands = map[string]bool{
	"builder": true, "buildx": true, "checkpoint": true, "compose": true, "config": true,
	"container": true, "context": true, "image": true, "manifest": true, "network": true,
	"node": true, "plugin": true, "secret": true, "service": true, "stack": true, "swarm": true,
	"system": true, "trust": true, "volume": true,
}

// subcommand names a call in errors and logs without its arguments.
func subcommand(args []string) string {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return ""
	}
	if managementCommands[args[0]] && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		return args[0] + " " + args[1]
	}
	return args[0]
}
