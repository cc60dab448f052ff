// Package depcheck holds only a test: the dependency fence that keeps each
// package's edges as the architecture draws them.
package depcheck
