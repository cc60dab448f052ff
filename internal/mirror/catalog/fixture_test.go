package catalog

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// The synthetic catalog the tests filter. Five packages:
//
//	foo   channels stable (default; replaces and skips) and fast; foo.v1.2.0
//	      requires package etcd in ">=0.9.0 <0.9.5" (the etcd head is 0.9.6),
//	      foo.v1.1.0 etcd in ">=0.9.0 <0.9.3"
//	      and provides API foo.example.com/v1 Foo; related images
//	etcd  channel alpha: a replaces chain, the head with a skipRange
//	bar   channel stable: two branches from v1.0.0, the head v3.0.0 replaces
//	      one and skips the other; v3.0.0 requires API foo.example.com/v1
//	      Foo; its bundle image is a multi-arch index
//	baz   channels stable (default) and candidate; olm.csv.metadata, an icon,
//	      olm.deprecations of a channel and a bundle; written as YAML
//	qux   one channel; its CSV as an olm.bundle.object
type fixtureBundle struct {
	name, pkg, version string
	image              string
	related            []RelatedImage
	extra              []Property
}

func prop(typ string, v any) Property {
	b, _ := json.Marshal(v)
	return Property{Type: typ, Value: b}
}

func (b fixtureBundle) json() string {
	props := []Property{prop(PropPackage, map[string]string{"packageName": b.pkg, "version": b.version})}
	props = append(props, b.extra...)
	img := b.image
	if img == "" {
		img = fmt.Sprintf("quay.example.com/%s/%s-bundle@sha256:%064x", b.pkg, b.pkg, hashOf(b.name))
	}
	out, _ := json.Marshal(map[string]any{"schema": SchemaBundle, "name": b.name, "package": b.pkg, "image": img, "properties": props, "relatedImages": b.related})
	return string(out)
}

func hashOf(s string) uint64 {
	var h uint64 = 1469598103934665603
	for _, c := range []byte(s) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

func relImg(pkg, name string) RelatedImage {
	return RelatedImage{Name: name, Image: fmt.Sprintf("quay.example.com/%s/%s@sha256:%064x", pkg, name, hashOf(pkg+name))}
}

func channelJSON(pkg, name string, entries ...map[string]any) string {
	out, _ := json.Marshal(map[string]any{"schema": SchemaChannel, "package": pkg, "name": name, "entries": entries})
	return string(out)
}

func entry(name string, kv ...any) map[string]any {
	e := map[string]any{"name": name}
	for i := 0; i+1 < len(kv); i += 2 {
		e[kv[i].(string)] = kv[i+1]
	}
	return e
}

var gvkFoo = GVK{Group: "foo.example.com", Version: "v1", Kind: "Foo"}

// fixtureFiles returns the configs directory of the synthetic catalog.
func fixtureFiles() map[string][]byte {
	files := map[string][]byte{}
	lines := func(ss ...string) []byte { return []byte(strings.Join(ss, "\n") + "\n") }

	files["foo/catalog.json"] = lines(
		`{"schema":"olm.package","name":"foo","defaultChannel":"stable","description":"Foo operator"}`,
		channelJSON("foo", "stable",
			entry("foo.v1.0.0"),
			entry("foo.v1.1.0", "replaces", "foo.v1.0.0"),
			entry("foo.v1.1.5", "replaces", "foo.v1.1.0"),
			entry("foo.v1.2.0", "replaces", "foo.v1.1.0", "skips", []string{"foo.v1.1.5"})),
		channelJSON("foo", "fast",
			entry("foo.v1.2.0"),
			entry("foo.v1.3.0-rc.1", "replaces", "foo.v1.2.0")),
		fixtureBundle{name: "foo.v1.0.0", pkg: "foo", version: "1.0.0", related: []RelatedImage{relImg("foo", "operator-1.0")},
			extra: []Property{prop(PropGVK, gvkFoo)}}.json(),
		fixtureBundle{name: "foo.v1.1.0", pkg: "foo", version: "1.1.0", related: []RelatedImage{relImg("foo", "operator-1.1")},
			extra: []Property{prop(PropGVK, gvkFoo), prop(PropPackageRequired, map[string]string{"packageName": "etcd", "versionRange": ">=0.9.0 <0.9.3"})}}.json(),
		fixtureBundle{name: "foo.v1.1.5", pkg: "foo", version: "1.1.5", related: []RelatedImage{relImg("foo", "operator-1.1.5")},
			extra: []Property{prop(PropGVK, gvkFoo)}}.json(),
		fixtureBundle{name: "foo.v1.2.0", pkg: "foo", version: "1.2.0", related: []RelatedImage{relImg("foo", "operator-1.2"), relImg("foo", "kube-rbac-proxy")},
			extra: []Property{prop(PropGVK, gvkFoo), prop(PropPackageRequired, map[string]string{"packageName": "etcd", "versionRange": ">=0.9.0 <0.9.5"})}}.json(),
		fixtureBundle{name: "foo.v1.3.0-rc.1", pkg: "foo", version: "1.3.0-rc.1", related: []RelatedImage{relImg("foo", "operator-1.3"), relImg("foo", "kube-rbac-proxy")},
			extra: []Property{prop(PropGVK, gvkFoo)}}.json(),
	)
	files["etcd/catalog.json"] = lines(
		`{"schema":"olm.package","name":"etcd","defaultChannel":"alpha"}`,
		channelJSON("etcd", "alpha",
			entry("etcd.v0.9.0"),
			entry("etcd.v0.9.2", "replaces", "etcd.v0.9.0"),
			entry("etcd.v0.9.4", "replaces", "etcd.v0.9.2"),
			entry("etcd.v0.9.6", "replaces", "etcd.v0.9.4", "skipRange", ">=0.9.0 <0.9.6")),
		fixtureBundle{name: "etcd.v0.9.0", pkg: "etcd", version: "0.9.0", related: []RelatedImage{relImg("etcd", "etcd-operator")}}.json(),
		fixtureBundle{name: "etcd.v0.9.2", pkg: "etcd", version: "0.9.2", related: []RelatedImage{relImg("etcd", "etcd-operator")}}.json(),
		fixtureBundle{name: "etcd.v0.9.4", pkg: "etcd", version: "0.9.4", related: []RelatedImage{relImg("etcd", "etcd-operator-0.9.4")}}.json(),
		fixtureBundle{name: "etcd.v0.9.6", pkg: "etcd", version: "0.9.6", related: []RelatedImage{relImg("etcd", "etcd-operator-0.9.6")}}.json(),
	)
	files["bar/catalog.json"] = lines(
		`{"schema":"olm.package","name":"bar","defaultChannel":"stable"}`,
		channelJSON("bar", "stable",
			entry("bar.v1.0.0"),
			entry("bar.v2.0.0", "replaces", "bar.v1.0.0"),
			entry("bar.v2.1.0", "replaces", "bar.v1.0.0"),
			entry("bar.v3.0.0", "replaces", "bar.v2.1.0", "skips", []string{"bar.v2.0.0"})),
		fixtureBundle{name: "bar.v1.0.0", pkg: "bar", version: "1.0.0"}.json(),
		fixtureBundle{name: "bar.v2.0.0", pkg: "bar", version: "2.0.0"}.json(),
		fixtureBundle{name: "bar.v2.1.0", pkg: "bar", version: "2.1.0"}.json(),
		fixtureBundle{name: "bar.v3.0.0", pkg: "bar", version: "3.0.0", image: "quay.example.com/bar/bar-bundle-multiarch@sha256:" + strings.Repeat("ab", 32),
			related: []RelatedImage{relImg("bar", "bar-operator")}, extra: []Property{prop(PropGVKRequired, gvkFoo)}}.json(),
	)
	csvMeta := map[string]any{"displayName": "Baz", "description": "Baz does baz things", "provider": map[string]string{"name": "Example"},
		"installModes": []map[string]any{{"type": "AllNamespaces", "supported": true}}, "annotations": map[string]string{"capabilities": "Basic Install"}}
	bazBundle := func(name, version string) string {
		b := fixtureBundle{name: name, pkg: "baz", version: version, related: []RelatedImage{relImg("baz", "baz-"+version)},
			extra: []Property{prop(PropCSVMetadata, csvMeta)}}.json()
		var v any
		_ = json.Unmarshal([]byte(b), &v)
		return toYAML(v)
	}
	files["baz/index.yaml"] = []byte(strings.Join([]string{
		"schema: olm.package\nname: baz\ndefaultChannel: stable\ndescription: Baz operator\nicon:\n  base64data: " +
			base64.StdEncoding.EncodeToString([]byte("<svg xmlns='http://www.w3.org/2000/svg'/>")) + "\n  mediatype: image/svg+xml\n",
		"schema: olm.channel\npackage: baz\nname: stable\nentries:\n  - name: baz.v0.1.0\n  - name: baz.v0.2.0\n    replaces: baz.v0.1.0\n    skipRange: '>=0.0.1 <0.2.0'\n",
		"schema: olm.channel\npackage: baz\nname: candidate\nentries:\n  - name: baz.v0.2.0\n  - name: baz.v0.3.0\n    replaces: baz.v0.2.0\n",
		bazBundle("baz.v0.1.0", "0.1.0"),
		bazBundle("baz.v0.2.0", "0.2.0"),
		bazBundle("baz.v0.3.0", "0.3.0"),
		"schema: olm.deprecations\npackage: baz\nentries:\n  - reference: {schema: olm.channel, name: candidate}\n    message: candidate is retired\n  - reference: {schema: olm.bundle, name: baz.v0.1.0}\n    message: baz.v0.1.0 has a known bug\n",
	}, "---\n"))
	csv := `{"apiVersion":"operators.coreos.com/v1alpha1","kind":"ClusterServiceVersion","metadata":{"name":"qux.v2.0.0"},"spec":{"displayName":"Qux","version":"2.0.0"}}`
	files["qux/catalog.json"] = lines(
		`{"schema":"olm.package","name":"qux","defaultChannel":"stable"}`,
		channelJSON("qux", "stable", entry("qux.v2.0.0")),
		fixtureBundle{name: "qux.v2.0.0", pkg: "qux", version: "2.0.0", related: []RelatedImage{relImg("qux", "qux")},
			extra: []Property{prop(PropBundleObject, map[string][]byte{"data": []byte(csv)})}}.json(),
	)
	return files
}

// toYAML renders v (JSON-shaped) as YAML, through the YAML library.
func toYAML(v any) string {
	b, err := yamlMarshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
