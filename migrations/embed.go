// Package migrations holds Slipway's schema as numbered SQL files, embedded into the binary.
package migrations

import "embed"

// FS holds every NNNN_name.sql file; internal/store applies them in order.
//
//go:embed *.sql
var FS embed.FS
