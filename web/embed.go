// Package web holds the dashboard's templates and static assets, embedded into the binary;
// internal/web serves them.
package web

import "embed"

// FS holds templates/*.html.
//
//go:embed templates
var FS embed.FS
