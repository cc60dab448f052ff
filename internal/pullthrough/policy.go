package pullthrough

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/berth-registry/berth/internal/config"
	"github.com/berth-registry/berth/internal/mirror"
)

// MirrorSources points each configured upstream at the cache: nodes pull
// <prefix>/<repository> from <cacheHost>/<prefix>/<repository>. The source
// is the prefix, the name images are pulled by (quay.io, docker.io).
func MirrorSources(pc *config.PullThrough, cacheHost string) ([]mirror.MirrorSource, error) {
	cacheHost = strings.TrimSuffix(cacheHost, "/")
	if cacheHost == "" || strings.Contains(cacheHost, "://") {
		return nil, fmt.Errorf("cache %q: want the cache's HOST[:PORT] as nodes reach it, without a scheme", cacheHost)
	}
	if pc == nil || len(pc.Upstreams) == 0 {
		return nil, fmt.Errorf("the serve config has no pullThrough upstreams")
	}
	var out []mirror.MirrorSource
	for _, u := range pc.Upstreams {
		out = append(out, mirror.MirrorSource{Source: u.Prefix, Mirrors: []string{cacheHost + "/" + u.Prefix}})
	}
	return out, nil
}

// MirrorSets renders the ImageDigestMirrorSet and ImageTagMirrorSet that
// point each upstream at the cache, as one multi-document YAML stream
// (valid input for berth policy render).
func MirrorSets(name string, pc *config.PullThrough, cacheHost string) ([]byte, error) {
	ms, err := MirrorSources(pc, cacheHost)
	if err != nil {
		return nil, err
	}
	idms, err := mirror.ImageDigestMirrorSets(name, ms)
	if err != nil {
		return nil, err
	}
	itms, err := mirror.ImageTagMirrorSets(name, ms)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Write(idms)
	if !bytes.HasSuffix(idms, []byte("\n")) {
		b.WriteByte('\n')
	}
	b.WriteString("---\n")
	b.Write(itms)
	return b.Bytes(), nil
}
