// Package web holds the dashboard's templates and static assets, embedded into the binary;
// internal/web serves them.
package web

import "embed"

// FS holds templates/*.html and static/ (served as they are: the pipeline file's JSON Schema).
//
//go:embed templates static
var FS embed.FS
