package mirror

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// Mapping is one SRC DST line of a mapping file.
type Mapping struct {
	Src, Dst string
	// Line is the 1-based line in the file, for error messages.
	Line int
}

// ParseMappings reads a mapping file: one "SRC DST" (or "SRC=DST") pair a
// line, blank lines and "#" comments ignored, as oc image mirror reads.
// Every bad line is reported at once, as file:line.
func ParseMappings(file string, r io.Reader) ([]Mapping, error) {
	var out []Mapping
	var bad []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 1 && strings.Count(line, "=") == 1 {
			fields = strings.SplitN(line, "=", 2)
		}
		if len(fields) != 2 || fields[0] == "" || fields[1] == "" {
			bad = append(bad, fmt.Sprintf("%s:%d: want \"SRC DST\", got %q", file, n, line))
			continue
		}
		m := Mapping{Src: fields[0], Dst: fields[1], Line: n}
		if _, _, err := ParseRef(m.Src, false); err != nil {
			bad = append(bad, fmt.Sprintf("%s:%d: source: %v", file, n, err))
			continue
		}
		if _, _, err := ParseRef(m.Dst, false); err != nil {
			bad = append(bad, fmt.Sprintf("%s:%d: destination: %v", file, n, err))
			continue
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%d bad line(s):\n  %s", len(bad), strings.Join(bad, "\n  "))
	}
	return out, nil
}

// ParseRef parses an image reference. ref is the tag or digest, "" when s
// names none (the caller decides what that means).
func ParseRef(s string, insecure bool) (repo name.Repository, ref string, err error) {
	opts := []name.Option{name.WeakValidation}
	if insecure {
		opts = append(opts, name.Insecure)
	}
	if i := strings.Index(s, "@"); i >= 0 {
		d, err := name.NewDigest(s, opts...)
		if err != nil {
			return name.Repository{}, "", err
		}
		return d.Context(), d.DigestStr(), nil
	}
	if slash := strings.LastIndex(s, "/"); strings.LastIndex(s, ":") > slash {
		t, err := name.NewTag(s, opts...)
		if err != nil {
			return name.Repository{}, "", err
		}
		return t.Context(), t.TagStr(), nil
	}
	r, err := name.NewRepository(s, opts...)
	return r, "", err
}

// Client builds the registry endpoints of one run and shares them, so each
// registry's token and connections are reused.
type Client struct {
	opts ClientOptions

	mu       sync.Mutex
	regs     map[string]*Registry
	insecure map[string]bool // hosts reached over plain HTTP or without TLS verification
}

// ClientOptions are the connection settings of a run.
type ClientOptions struct {
	// Keychain supplies credentials (nil: anonymous).
	Keychain authn.Keychain
	// Insecure lists hosts reached over plain HTTP or without TLS
	// verification, whatever their role.
	Insecure map[string]bool
	// InsecureSources and InsecureDestinations extend that to every
	// registry a plan reads from, or writes to (--src-insecure,
	// --dest-insecure): the planning functions mark each host by its role
	// before they reach it.
	InsecureSources, InsecureDestinations bool
	// Transport is the base transport (nil: built from CAFiles/CertsDir).
	Transport http.RoundTripper
	// CAFiles are extra PEM CA bundles trusted for every registry.
	CAFiles []string
	// CertsDir is a certs.d directory: DIR/HOST[:PORT]/*.crt are trusted.
	CertsDir string
}

// NewClient validates opts (the CA files must load) and returns a Client.
func NewClient(opts ClientOptions) (*Client, error) {
	c := &Client{opts: opts, regs: map[string]*Registry{}, insecure: map[string]bool{}}
	for h, ok := range opts.Insecure {
		if ok {
			c.insecure[h] = true
		}
	}
	if c.opts.Transport == nil {
		t, err := baseTransport(opts, c.isInsecure)
		if err != nil {
			return nil, err
		}
		c.opts.Transport = t
	}
	return c, nil
}

func (c *Client) isInsecure(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.insecure[host]
}

func baseTransport(opts ClientOptions, insecure func(host string) bool) (http.RoundTripper, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	anyInsecure := opts.InsecureSources || opts.InsecureDestinations
	for _, ok := range opts.Insecure {
		anyInsecure = anyInsecure || ok
	}
	if len(opts.CAFiles) == 0 && opts.CertsDir == "" && !anyInsecure {
		return t, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	files := append([]string(nil), opts.CAFiles...)
	if opts.CertsDir != "" {
		crts, _ := filepath.Glob(filepath.Join(opts.CertsDir, "*", "*.crt"))
		files = append(files, crts...)
	}
	for _, f := range files {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s: no PEM certificates in it", f)
		}
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if anyInsecure {
		// Skip verification only for the hosts marked insecure.
		secure := t
		lax := t.Clone()
		lax.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for per host
		return hostSwitch{insecure: insecure, secure: secure, lax: lax}, nil
	}
	return t, nil
}

type hostSwitch struct {
	insecure    func(host string) bool
	secure, lax http.RoundTripper
}

func (h hostSwitch) RoundTrip(r *http.Request) (*http.Response, error) {
	if h.insecure(r.URL.Host) {
		return h.lax.RoundTrip(r)
	}
	return h.secure.RoundTrip(r)
}

// Registry returns the shared endpoint for host.
func (c *Client) Registry(host string) (*Registry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	insecure := c.insecure[host]
	if r, ok := c.regs[host]; ok && r.opts.Insecure == insecure {
		return r, nil
	}
	r, err := NewRegistry(host, RegistryOptions{Keychain: c.opts.Keychain, Transport: c.opts.Transport, Insecure: insecure})
	if err != nil {
		return nil, err
	}
	c.regs[host] = r
	return r, nil
}

// Role says what a plan does with a registry, for --src-insecure and
// --dest-insecure.
type Role int

const (
	// RoleSource is a registry read from.
	RoleSource Role = iota
	// RoleDestination is a registry written to, or asked what it holds.
	RoleDestination
)

// mark records that host plays role, so it is reached insecurely when the
// options ask that of the role. It returns whether host is insecure.
func (c *Client) mark(host string, role Role) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if (role == RoleSource && c.opts.InsecureSources) || (role == RoleDestination && c.opts.InsecureDestinations) {
		c.insecure[host] = true
	}
	return c.insecure[host]
}

// parseRef parses s for a registry that plays role.
func (c *Client) parseRef(s string, role Role) (name.Repository, string, error) {
	return ParseRef(s, c.mark(hostOf(s), role))
}

// endpoint is the shared endpoint of a registry that plays role.
func (c *Client) endpoint(host string, role Role) (*Registry, error) {
	c.mark(host, role)
	return c.Registry(host)
}

// ImageJob turns "SRC DST" into a Job between registries. A destination
// without tag or digest takes the source's tag (or, for a source by digest,
// is written by digest only).
func (c *Client) ImageJob(src, dst string) (Job, error) {
	srepo, sref, err := c.parseRef(src, RoleSource)
	if err != nil {
		return Job{}, fmt.Errorf("source %q: %w", src, err)
	}
	if sref == "" {
		sref = "latest"
	}
	drepo, dref, err := c.parseRef(dst, RoleDestination)
	if err != nil {
		return Job{}, fmt.Errorf("destination %q: %w", dst, err)
	}
	if strings.Contains(dref, ":") {
		return Job{}, fmt.Errorf("destination %q: name a tag or nothing, not a digest (the digest is the source's)", dst)
	}
	if dref == "" && !strings.Contains(sref, ":") {
		dref = sref
	}
	s, err := c.endpoint(srepo.RegistryStr(), RoleSource)
	if err != nil {
		return Job{}, err
	}
	t, err := c.endpoint(drepo.RegistryStr(), RoleDestination)
	if err != nil {
		return Job{}, err
	}
	return Job{Source: s, SrcRepo: srepo.RepositoryStr(), SrcRef: sref, Target: t, DstRepo: drepo.RepositoryStr(), DstTag: dref, From: src}, nil
}

// hostOf is the registry part of a reference string, for insecure lookups
// before parsing.
func hostOf(ref string) string {
	h, _, _ := strings.Cut(ref, "/")
	return h
}

// DirJob turns SRC into a Job writing into layout l under as ("REPO[:TAG]";
// empty: SRC's repository path and tag).
func (c *Client) DirJob(src string, l *Layout, as string) (Job, error) {
	srepo, sref, err := c.parseRef(src, RoleSource)
	if err != nil {
		return Job{}, fmt.Errorf("source %q: %w", src, err)
	}
	if sref == "" {
		sref = "latest"
	}
	repo, tag := srepo.RepositoryStr(), ""
	if !strings.Contains(sref, ":") {
		tag = sref
	}
	if as != "" {
		r, t := splitRefName(as)
		if r == "" || strings.Contains(as, "@") {
			return Job{}, fmt.Errorf("name inside the directory %q: want REPO[:TAG]", as)
		}
		repo = r
		if t != "" {
			tag = t
		}
	}
	s, err := c.endpoint(srepo.RegistryStr(), RoleSource)
	if err != nil {
		return Job{}, err
	}
	return Job{Source: s, SrcRepo: srepo.RepositoryStr(), SrcRef: sref, Target: l, DstRepo: repo, DstTag: tag, From: src}, nil
}

// LayoutJobs pushes every image of layout l to prefix (REGISTRY[/PATH]),
// each under prefix/<its repository>. Referrers are not listed: they travel
// with their subjects.
func (c *Client) LayoutJobs(l *Layout, prefix string) ([]Job, error) {
	host, path, _ := strings.Cut(strings.TrimSuffix(prefix, "/"), "/")
	t, err := c.endpoint(host, RoleDestination)
	if err != nil {
		return nil, fmt.Errorf("destination prefix %q: %w", prefix, err)
	}
	var jobs []Job
	for _, e := range l.Entries() {
		if e.Subject != "" || strings.HasPrefix(e.Tag, "sha256-") {
			continue
		}
		repo := strings.Trim(path+"/"+e.Repository, "/")
		if repo == "" {
			return nil, fmt.Errorf("%s: image %s has no repository name; give a DST_PREFIX with a path (REGISTRY/PATH)", l.Dir(), e.Digest)
		}
		ref := e.Tag
		if ref == "" {
			ref = e.Digest
		}
		from := e.Source
		if from == "" {
			from = refString(l.Name(), e.Repository, ref)
		}
		jobs = append(jobs, Job{Source: l, SrcRepo: e.Repository, SrcRef: ref, Target: t, DstRepo: repo, DstTag: e.Tag, From: from})
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("%s holds no images", l.Dir())
	}
	return jobs, nil
}

// JobMirrorSets derives the mirror configuration of a copy: each job's
// source repository mirrored at its destination repository. Sources named
// by digest go to digest (IDMS/ICSP); sources named by tag go to tag
// (ITMS), but only when the destination keeps the tag, since a tag mirror
// is asked for the same tag. Jobs whose source is not a registry reference
// (a layout written by another tool) or whose destination is a layout are
// left out; notes say why for each skipped job.
func JobMirrorSets(jobs []Job) (digest, tag []MirrorSource, notes []string) {
	for _, j := range jobs {
		rt, ok := j.Target.(RegistryTarget)
		if !ok {
			continue
		}
		repo, ref, err := ParseRef(j.from(), false)
		if err != nil || strings.HasPrefix(j.from(), "oci:") {
			notes = append(notes, fmt.Sprintf("%s: source is not a registry reference; no mirror set entry", j.from()))
			continue
		}
		src := repo.String()
		if repo.RegistryStr() == name.DefaultRegistry {
			src = "docker.io/" + repo.RepositoryStr()
		}
		ms := MirrorSource{Source: src, Mirrors: []string{rt.Host() + "/" + j.DstRepo}}
		switch {
		case strings.Contains(ref, ":"):
			digest = append(digest, ms)
		case ref == "" || ref == j.DstTag:
			tag = append(tag, ms)
		default:
			notes = append(notes, fmt.Sprintf("%s: copied by tag to tag %q; a tag mirror is asked for the source's tag, so no ImageTagMirrorSet entry", j.from(), j.DstTag))
		}
	}
	return normalize(digest), normalize(tag), notes
}
