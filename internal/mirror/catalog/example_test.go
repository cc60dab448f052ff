package catalog_test

import (
	"context"
	"fmt"
	"log"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/catalog"
)

// How `berth mirror apply` uses the package for one mirror.operators[]
// entry: read, filter (print the decisions for --dry-run), rebuild, then
// mirror every listed image by digest.
func Example() {
	ctx := context.Background()
	src, err := mirror.NewRegistry("registry.example.com", mirror.RegistryOptions{})
	if err != nil {
		log.Fatal(err)
	}
	dst, err := mirror.NewRegistry("mirror.example.com:5000", mirror.RegistryOptions{})
	if err != nil {
		log.Fatal(err)
	}
	f := catalog.Filter{ // decoded from the ISC by the imageset package
		Catalog:  "registry.example.com/redhat/redhat-operator-index:v4.18",
		Packages: []catalog.PackageFilter{{Name: "foo", Channels: []catalog.ChannelFilter{{Name: "stable", MinVersion: "1.1.0"}}}},
	}
	cat, err := catalog.Read(ctx, src, "redhat/redhat-operator-index", "v4.18")
	if err != nil {
		log.Fatal(err) // e.g. errors.Is(err, catalog.ErrNoConfigsLabel)
	}
	res, err := cat.Config.Apply(f)
	if err != nil {
		log.Fatal(err) // every problem at once, each naming the object
	}
	for _, d := range res.Decisions {
		fmt.Println(d) // "add etcd.v0.9.4: required by foo.v1.2.0 (olm.package.required etcd >=0.9.0 <0.9.5) (etcd/alpha)"
	}
	repo, tag := f.Target("redhat/redhat-operator-index", "v4.18")
	out, err := cat.Rebuild(ctx, res, dst, "mirror-prefix/"+repo, tag)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("catalog", out.Digest, out.Notes)
	for _, im := range res.Images {
		fmt.Println("mirror", im.Kind, im.Ref) // jobs for the copy engine
	}
}
