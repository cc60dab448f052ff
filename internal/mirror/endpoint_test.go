package mirror_test

import (
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/endpointtest"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/berth-registry/berth/internal/testpeer"
)

// Every Source/Target implementation passes the same suite: the layout,
// and the registry client against berth serve, go-containerregistry's
// registry and CNCF Distribution.
func TestEndpointConformance(t *testing.T) {
	t.Run("Layout", func(t *testing.T) {
		endpointtest.Run(t, endpointtest.Features{}, func(t *testing.T) endpointtest.Endpoint {
			dir := t.TempDir()
			l, err := mirror.OpenLayout(dir, true)
			if err != nil {
				t.Fatal(err)
			}
			return endpointtest.Endpoint{Target: l, Reopen: func(t *testing.T) mirror.Source {
				l, err := mirror.OpenLayout(dir, false)
				if err != nil {
					t.Fatal(err)
				}
				return l
			}}
		})
	})
	registry := func(f endpointtest.Features, start func(t *testing.T) string) func(t *testing.T) {
		return func(t *testing.T) {
			endpointtest.Run(t, f, func(t *testing.T) endpointtest.Endpoint {
				host := start(t)
				open := func(t *testing.T) *mirror.Registry {
					r, err := mirror.NewRegistry(host, mirror.RegistryOptions{})
					if err != nil {
						t.Fatal(err)
					}
					return r
				}
				return endpointtest.Endpoint{Target: open(t), Reopen: func(t *testing.T) mirror.Source { return open(t) }}
			})
		}
	}
	t.Run("Registry/berth", registry(endpointtest.Features{}, func(t *testing.T) string { return servertest.Start(t, servertest.Options{}) }))
	t.Run("Registry/go-containerregistry", registry(endpointtest.Features{}, func(t *testing.T) string { return mirrortest.StartRegistry(t) }))
	t.Run("Registry/distribution", registry(endpointtest.Features{NoReferrersAPI: true}, func(t *testing.T) string { return testpeer.StartDistribution(t) }))
}
