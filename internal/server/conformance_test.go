package server_test

import (
	"testing"

	"github.com/berth-registry/berth/conformance"
	"github.com/berth-registry/berth/internal/server/servertest"
)

// TestConformance runs the whole conformance suite, with every feature
// claimed, against berth serve on each storage backend.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts servertest.Options
	}{
		{"filesystem", servertest.Options{}},
		{"emptyDir", servertest.Options{Memory: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := servertest.Start(t, tc.opts)
			conformance.Run(t, conformance.Config{BaseURL: "http://" + addr})
		})
	}
}
