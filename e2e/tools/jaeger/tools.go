//go:build tools

// Package tools pins the command built from this module so that
// `go mod tidy` keeps every package it needs in go.mod/go.sum.
package tools

import (
	_ "github.com/jaegertracing/jaeger/cmd/jaeger"
)
