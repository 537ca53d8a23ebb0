// Package pipeline reads a repository's pipeline file (.slipway.yml), read at the pushed commit: it
// parses and validates the file, picks the (service, environment) pairs a push deploys, and checks
// them against the server's deploy policy.
//
// The file comes from whoever can push to a configured repository, so the parser treats it as
// hostile: it bounds the input's size and shape before the YAML parser sees it, rejects YAML
// anchors, aliases and tags (no alias expansion, so no "billion laughs"), and rejects any path
// that could leave the checked-out repository. Everything it accepts is described by
// web/static/pipeline.schema.json (served at /pipeline.schema.json); README.md here is the reference for users.
package pipeline
