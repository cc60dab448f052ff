package pullthrough_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/pullthrough"
	"github.com/berth-registry/berth/internal/pullthrough/pullthroughtest"
	"github.com/berth-registry/berth/internal/registry"
	"github.com/berth-registry/berth/internal/server"
	"github.com/berth-registry/berth/internal/server/servertest"
	"github.com/opencontainers/go-digest"
)

func openStore(t *testing.T, root string) *registry.Registry {
	t.Helper()
	cfg := &config.Config{Storage: config.Storage{Filesystem: &config.Filesystem{RootDirectory: root}}}
	cfg.Defaults()
	st, err := server.OpenStores(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return registry.New(st.Blobs, st.Meta, registry.Options{})
}

func TestScheduledImportFollowsAMovingTag(t *testing.T) {
	upAddr := servertest.Start(t, servertest.Options{})
	up := &pullthroughtest.Client{Base: "http://" + upAddr}
	one := up.PushImage(t, "team/app", "stable", []byte("one"))
	root := t.TempDir()
	addr := servertest.Start(t, servertest.Options{Root: root, Imports: []config.Import{{
		From: upAddr + "/team/app:stable", To: "imported/app", Schedule: config.Duration(100 * time.Millisecond), Insecure: true,
	}}})
	local := "http://" + addr + "/v2/imported/app/manifests/stable"
	digestOf := func() string {
		a := get(t, http.MethodHead, local)
		return a.header.Get("Docker-Content-Digest")
	}
	waitFor(t, "the first import", func() bool { return digestOf() == string(one.Digest) })
	two := up.PushImage(t, "team/app", "stable", []byte("two"))
	waitFor(t, "the import to follow the tag", func() bool { return digestOf() == string(two.Digest) })
	e := &env{cache: "http://" + addr}
	e.pull(t, "imported/app", "stable", two)
	e.pull(t, "imported/app", string(one.Digest), one)

	cfg := &config.Config{Storage: config.Storage{Filesystem: &config.Filesystem{RootDirectory: root}}}
	cfg.Defaults()
	st, err := server.OpenStores(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hist, err := st.Meta.TagHistory(context.Background(), "imported/app", "stable")
	if err != nil || !slices.Equal(hist, []digest.Digest{one.Digest, two.Digest}) {
		t.Fatalf("tag history = %v, %v; want [%s %s]", hist, err, one.Digest, two.Digest)
	}
}

func TestImportModes(t *testing.T) {
	upAddr := servertest.Start(t, servertest.Options{})
	up := &pullthroughtest.Client{Base: "http://" + upAddr}
	arm := up.PushImage(t, "team/multi", "", []byte("arm"))
	amd := up.PushImage(t, "team/multi", "", []byte("amd"))
	idx, _ := up.PushIndex(t, "team/multi", "v1", []string{"arm64", "amd64"}, []pullthroughtest.Image{arm, amd})
	for _, c := range []struct {
		mode string
		want digest.Digest
	}{{"Legacy", amd.Digest}, {"PreserveOriginal", idx}} {
		t.Run(c.mode, func(t *testing.T) {
			reg := openStore(t, t.TempDir())
			spec, err := pullthrough.NewImportSpec(upAddr+"/team/multi", "mine/multi", "v.*", c.mode, "", "", true, 5*time.Second, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := pullthrough.Import(context.Background(), reg, spec, nil)
			if err != nil || len(res) != 1 || res[0].Digest != c.want || !res[0].Changed {
				t.Fatalf("import: %+v, %v; want v1 at %s", res, err, c.want)
			}
			info, err := reg.StatManifest(context.Background(), "mine/multi", "v1")
			if err != nil || info.Digest != c.want {
				t.Fatalf("local v1 = %+v, %v", info, err)
			}
			res, err = pullthrough.Import(context.Background(), reg, spec, nil)
			if err != nil || res[0].Changed {
				t.Fatalf("a second import moved nothing but reports %+v, %v", res, err)
			}
		})
	}
}
