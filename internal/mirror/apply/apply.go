package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/catalog"
	"github.com/berth-registry/berth/internal/mirror/imageset"
)

// layoutHost stands for the directory in a mirror-to-disk plan: the image
// set is planned as if for a registry of that name (RFC 6761 reserves
// .invalid, so it never names a real one) and each destination is the
// path below it inside the layout.
const layoutHost = "layout.invalid"

// RecordFile is what a mirror-to-disk run leaves in the directory, so the
// disk-to-mirror side needs neither the sources, nor the update graph, nor
// the catalogs to push it and describe it to the cluster.
const RecordFile = "berth-imageset.json"

// Request is one `berth mirror apply` run, in one of the three workflows:
// mirror to mirror (To), mirror to disk (ToDir), disk to mirror (FromDir
// and To).
type Request struct {
	// Config is the parsed ImageSetConfiguration.
	Config *imageset.ImageSetConfiguration
	// To is REGISTRY[/PREFIX].
	To string
	// ToDir receives the image set (mirror to disk).
	ToDir *mirror.Layout
	// FromDir holds an image set a ToDir run wrote (disk to mirror).
	FromDir *mirror.Layout
	// Graphs answers release channels (mirror to mirror, mirror to disk).
	Graphs imageset.GraphSource
	// GraphImage overrides the graph-data image (graph: true).
	GraphImage string
	// Signatures, when set, is asked for each release's signatures, which
	// become the signature ConfigMap (a store that cannot be reached is a
	// note, not a failure: the release still mirrors).
	Signatures SignatureSource
}

// SignatureSource reads a release's signatures by its digest.
type SignatureSource interface {
	ReleaseSignatures(ctx context.Context, digest string) (imageset.ReleaseSignature, error)
}

// Category sorts images the way the cluster resources do.
type Category string

// The categories; catalogs and the graph image get no mirror set entry:
// the cluster pulls them from the mirror by name.
const (
	Release  Category = "release"
	Operator Category = "operator"
	Generic  Category = "generic"
	Catalog  Category = "catalog"
	Graph    Category = "graph"
)

// Plan is a resolved image set: every copy, every catalog to rebuild, and
// what the cluster must be told afterwards.
type Plan struct {
	// Set is the image set as planned from the configuration (empty for
	// disk to mirror, which replays Recorded).
	Set *imageset.Plan
	// Jobs are every copy, each once.
	Jobs []mirror.Job
	// Categories is the category of each job, by index.
	Categories []Category
	// Catalogs are the catalogs to rebuild (none for disk to mirror: the
	// directory holds them rebuilt).
	Catalogs []*CatalogPlan
	// Notes are things the user should know: what blockedImages removed,
	// what the directory holds that the configuration does not name.
	Notes []string
	// Signatures are the release signatures found.
	Signatures []imageset.ReleaseSignature

	req      Request
	prefix   string // REGISTRY[/PREFIX] of the destinations, layoutHost for a directory
	recorded *Record
	seen     map[string]int // "source\x00destination" -> job index
	catalogs []string       // per job: the catalog that brought an operator image
	from     string         // the catalog being planned, for add
}

// CatalogPlan is one operator catalog: read, filtered, to be rebuilt.
type CatalogPlan struct {
	Plan   imageset.Catalog
	Source *catalog.Catalog
	Result *catalog.Result
	// Target, Repo and Tag are where the rebuilt image goes.
	Target    mirror.Target
	Repo, Tag string
	// Rebuilt is set once Rebuild pushed it.
	Rebuilt *catalog.Rebuilt
}

// New resolves a request into a plan: the update graph is asked for
// release channels, every release payload and catalog is read, catalogs
// are filtered. Nothing is written. Every problem is returned at once.
func New(ctx context.Context, c *mirror.Client, req Request) (*Plan, error) {
	p := &Plan{req: req, seen: map[string]int{}}
	switch {
	case req.FromDir != nil && req.ToDir != nil:
		return nil, errors.New("--from-dir and --to-dir exclude each other")
	case req.FromDir != nil && req.To == "":
		return nil, errors.New("--from-dir needs --to REGISTRY[/PREFIX], the mirror that receives the image set")
	case req.FromDir == nil && req.ToDir == nil && req.To == "":
		return nil, errors.New("give --to REGISTRY[/PREFIX] (mirror to mirror), --to-dir DIR (mirror to disk) or --from-dir DIR --to REGISTRY[/PREFIX] (disk to mirror)")
	case req.ToDir != nil && req.To != "":
		return nil, errors.New("--to-dir writes a directory: name the registry when pushing it (--from-dir DIR --to REGISTRY), not now")
	}
	if req.FromDir != nil {
		return p, p.fromDir(c)
	}
	p.prefix = strings.TrimSuffix(strings.TrimPrefix(req.To, "docker://"), "/")
	if req.ToDir != nil {
		p.prefix = layoutHost
	}
	set, err := imageset.NewPlan(ctx, req.Config, req.Graphs, imageset.PlanOptions{Target: p.prefix, GraphImage: req.GraphImage})
	if err != nil {
		return nil, err
	}
	p.Set = set
	var errs []error
	for _, r := range set.Releases {
		if err := p.planRelease(ctx, c, r); err != nil {
			errs = append(errs, fmt.Errorf("release %s: %w", r.Source, err))
		}
	}
	if g := set.Graph; g != nil {
		errs = append(errs, p.add(c, g.Source, g.Destination, Graph))
	}
	for _, img := range set.Images {
		if err := p.add(c, img.Source, untagDigest(img.Source, img.Destination), Generic); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", img.Field, err))
		}
	}
	for _, cp := range set.Catalogs {
		if err := p.planCatalog(ctx, c, cp); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", cp.Field, cp.Source, err))
		}
	}
	for _, b := range set.Blocked {
		p.Notes = append(p.Notes, fmt.Sprintf("blocked: %s (%s)", b.Source, b.Reason))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// untagDigest drops the tag a plan gives a digest-only source: the image
// is pushed by digest, which is how a mirror set finds it. A tag of the
// form sha256-<hex> would also collide with the referrers tag schemes
// (OCI 1.1's fallback tag, cosign's) that name the image's signatures.
func untagDigest(src, dst string) string {
	if !strings.Contains(src, "@") {
		return dst
	}
	if _, ref, err := mirror.ParseRef(dst, false); err == nil && strings.HasPrefix(ref, "sha256-") {
		return strings.TrimSuffix(dst, ":"+ref)
	}
	return dst
}

// add plans one copy, once per source and destination. Images
// blockedImages names are left out with a note.
func (p *Plan) add(c *mirror.Client, src, dst string, cat Category) error {
	key := src + "\x00" + dst
	if _, ok := p.seen[key]; ok {
		return nil
	}
	if p.Set != nil {
		if reason, blocked := p.Set.BlockedBy(src, dst); blocked {
			p.Notes = append(p.Notes, fmt.Sprintf("blocked: %s (%s)", src, reason))
			return nil
		}
	}
	var (
		j   mirror.Job
		err error
	)
	if p.req.ToDir != nil {
		j, err = c.DirJob(src, p.req.ToDir, strings.TrimPrefix(dst, layoutHost+"/"))
	} else {
		j, err = c.ImageJob(src, dst)
	}
	if err != nil {
		return err
	}
	p.seen[key] = len(p.Jobs)
	p.Jobs = append(p.Jobs, j)
	p.Categories = append(p.Categories, cat)
	p.catalogs = append(p.catalogs, p.from)
	return nil
}

func (p *Plan) planRelease(ctx context.Context, c *mirror.Client, r imageset.Release) error {
	src, repo, ref, err := c.Resolve(r.Source, mirror.RoleSource)
	if err != nil {
		return err
	}
	if ref == "" {
		ref = "latest"
	}
	payload, err := mirror.ReadPayload(ctx, src, repo, ref)
	if err != nil {
		return err
	}
	tgt, err := p.Set.ReleaseTarget(payload)
	if err != nil {
		return err
	}
	relRef, err := name.ParseReference(r.Source, name.WeakValidation)
	if err != nil {
		return err
	}
	if p.req.Signatures != nil {
		sig, err := p.req.Signatures.ReleaseSignatures(ctx, payload.Digest.String())
		switch {
		case err != nil:
			p.Notes = append(p.Notes, fmt.Sprintf("release %s: no signatures: %v", payload.Version, err))
		case len(sig.Signatures) > 0:
			p.Signatures = append(p.Signatures, sig)
		}
	}
	for _, pi := range mirror.PlanRelease(payload, relRef, tgt).Images {
		if err := p.add(c, pi.Source, pi.Destination, Release); err != nil {
			return fmt.Errorf("component %s: %w", pi.Component, err)
		}
	}
	return nil
}

func (p *Plan) planCatalog(ctx context.Context, c *mirror.Client, cp imageset.Catalog) error {
	var (
		src       mirror.Source
		repo, ref string
		err       error
	)
	if dir, ok := strings.CutPrefix(cp.Source, "oci://"); ok {
		l, err := mirror.OpenLayout(dir, false)
		if err != nil {
			return err
		}
		if repo, ref, err = catalog.LayoutImage(l); err != nil {
			return err
		}
		src = l
	} else if src, repo, ref, err = c.Resolve(cp.Source, mirror.RoleSource); err != nil {
		return err
	}
	cat, err := catalog.Read(ctx, src, repo, ref)
	if err != nil {
		return err
	}
	f, err := toFilter(cp.Operator)
	if err != nil {
		return err
	}
	res, err := cat.Config.Apply(f)
	if err != nil {
		return err
	}
	if len(cp.Operator.Platforms) > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("%s: platforms are not filtered yet: every platform of the catalog's images is copied, so their digests stay those the catalog names", cp.Field))
	}
	plan := &CatalogPlan{Plan: cp, Source: cat, Result: res}
	if p.req.ToDir != nil {
		plan.Target = p.req.ToDir
		plan.Repo, plan.Tag = splitRepoTag(strings.TrimPrefix(cp.Destination, layoutHost+"/"))
	} else {
		reg, r, tag, err := c.Resolve(cp.Destination, mirror.RoleDestination)
		if err != nil {
			return err
		}
		plan.Target, plan.Repo, plan.Tag = reg, r, tag
	}
	p.Catalogs = append(p.Catalogs, plan)
	p.from = cp.Source
	defer func() { p.from = "" }()
	for _, img := range res.Images {
		dst, err := p.operatorDestination(img.Ref)
		if err != nil {
			return fmt.Errorf("%s %s of %s: %w", img.Kind, img.Ref, img.Bundle, err)
		}
		if err := p.add(c, img.Ref, dst, Operator); err != nil {
			return fmt.Errorf("%s %s of %s: %w", img.Kind, img.Ref, img.Bundle, err)
		}
	}
	return nil
}

// operatorDestination keeps a bundle or related image's repository path
// under the prefix, by digest (or by its tag when the catalog names one).
func (p *Plan) operatorDestination(ref string) (string, error) {
	r, err := name.ParseReference(ref, name.WeakValidation)
	if err != nil {
		return "", err
	}
	dst := p.prefix + "/" + r.Context().RepositoryStr()
	if t, ok := r.(name.Tag); ok {
		dst += ":" + t.TagStr()
	}
	return dst, nil
}

func splitRepoTag(s string) (repo, tag string) {
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// toFilter converts an ISC operator entry into the catalog filter: the two
// share their field names.
func toFilter(o imageset.Operator) (catalog.Filter, error) {
	var f catalog.Filter
	raw, err := json.Marshal(o)
	if err != nil {
		return f, err
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&f); err != nil {
		return f, err
	}
	return f, nil
}

// RebuildCatalogs builds and pushes every filtered catalog, before the
// images it names are copied (so a dry run reads catalogs but never
// writes them).
func (p *Plan) RebuildCatalogs(ctx context.Context) error {
	for _, cp := range p.Catalogs {
		rb, err := cp.Source.Rebuild(ctx, cp.Result, cp.Target, cp.Repo, cp.Tag)
		if err != nil {
			return err
		}
		cp.Rebuilt = rb
	}
	return nil
}

// WriteDryRun prints the whole plan: every source and destination, every
// catalog decision, what was blocked.
func (p *Plan) WriteDryRun(w io.Writer) error {
	for i, j := range p.Jobs {
		dst := j.To
		if dst == "" {
			dst = j.Target.Name() + "/" + j.DstRepo
			if j.DstTag != "" {
				dst += ":" + j.DstTag
			}
		}
		if _, err := fmt.Fprintf(w, "%-8s %s -> %s\n", p.Categories[i], j.From, dst); err != nil {
			return err
		}
	}
	for _, cp := range p.Catalogs {
		fmt.Fprintf(w, "\ncatalog %s -> %s/%s:%s (%d images)\n", cp.Plan.Source, cp.Target.Name(), cp.Repo, cp.Tag, len(cp.Result.Images))
		for _, d := range cp.Result.Decisions {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// Resources are the cluster resources of a finished run against a
// registry (To): mirror sets by category, the rebuilt catalogs, the
// update service.
func (p *Plan) Resources() imageset.ClusterResources {
	var out imageset.ClusterResources
	byCat := map[Category][]mirror.Job{}
	for i, j := range p.Jobs {
		byCat[p.Categories[i]] = append(byCat[p.Categories[i]], j)
	}
	sets := func(c Category) imageset.MirrorSets {
		d, t, _ := mirror.JobMirrorSets(byCat[c])
		return imageset.MirrorSets{Digest: d, Tag: t}
	}
	out.Release, out.Operator, out.Generic = sets(Release), sets(Operator), sets(Generic)
	prefix := p.prefix
	out.Signatures = p.Signatures
	if p.recorded != nil {
		out.Signatures = p.recorded.Signatures
		for _, rc := range p.recorded.Catalogs {
			out.Catalogs = append(out.Catalogs, imageset.RebuiltCatalog{Reference: prefix + "/" + rc.Reference, Digest: rc.Digest})
		}
		if p.recorded.Graph != "" {
			out.UpdateService = &imageset.UpdateServiceRef{Releases: prefix + "/" + imageset.ReleaseImagesRepository, GraphImage: prefix + "/" + p.recorded.Graph}
		}
		return out
	}
	for _, cp := range p.Catalogs {
		if cp.Rebuilt != nil {
			ref := cp.Target.Name() + "/" + cp.Repo
			if cp.Tag != "" {
				ref += ":" + cp.Tag
			}
			out.Catalogs = append(out.Catalogs, imageset.RebuiltCatalog{Reference: ref, Digest: cp.Rebuilt.Digest.String()})
		}
	}
	if g := p.Set.Graph; g != nil {
		out.UpdateService = &imageset.UpdateServiceRef{Releases: g.Releases, GraphImage: g.Destination}
	}
	return out
}

// WriteResources writes the cluster resources into dir, each file
// atomically, and returns the paths written.
func WriteResources(dir string, r imageset.ClusterResources) ([]string, error) {
	files, err := r.Files()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for _, n := range imageset.FileNames(files) {
		path := filepath.Join(dir, n)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, files[n], 0o644); err != nil {
			return written, err
		}
		if err := os.Rename(tmp, path); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// Record is what a directory holds of an image set: each image by its
// name in the layout, with its category, the rebuilt catalogs and the
// element of the configuration that brought it.
type Record struct {
	Version  int              `json:"version"`
	Images   []RecordedImage  `json:"images"`
	Catalogs []RecordedCatalg `json:"catalogs,omitempty"`
	// Graph is the graph-data image's path:tag in the layout.
	Graph string `json:"graph,omitempty"`
	// Signatures are the releases' signatures, for the ConfigMap the
	// disconnected side writes.
	Signatures []imageset.ReleaseSignature `json:"signatures,omitempty"`
}

// RecordedImage is one image of the directory.
type RecordedImage struct {
	// Ref is REPO:TAG or REPO@DIGEST inside the layout.
	Ref      string   `json:"ref"`
	Source   string   `json:"source"`
	Category Category `json:"category"`
	// Catalog is the catalog that brought an operator image.
	Catalog string `json:"catalog,omitempty"`
}

// RecordedCatalg is one rebuilt catalog of the directory.
type RecordedCatalg struct {
	// Reference is REPO:TAG inside the layout (and under the prefix).
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	// Source is the catalog as the configuration names it.
	Source string `json:"source"`
}

// WriteRecord leaves the record of a finished mirror-to-disk run in the
// directory (merged with what an earlier run into it recorded).
func (p *Plan) WriteRecord() error {
	l := p.req.ToDir
	if l == nil {
		return nil
	}
	rec, err := ReadRecord(l.Dir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if rec == nil {
		rec = &Record{Version: 1}
	}
	have := map[string]bool{}
	for _, im := range rec.Images {
		have[im.Ref] = true
	}
	for i, j := range p.Jobs {
		ref := j.DstRepo + ":" + j.DstTag
		if j.DstTag == "" {
			ref = j.DstRepo + "@" + j.SrcRef
		}
		if !have[ref] {
			have[ref] = true
			rec.Images = append(rec.Images, RecordedImage{Ref: ref, Source: j.From, Category: p.Categories[i], Catalog: p.catalogs[i]})
		}
		if p.Categories[i] == Graph {
			rec.Graph = ref
		}
	}
	for _, cp := range p.Catalogs {
		if cp.Rebuilt == nil {
			continue
		}
		ref := cp.Repo + ":" + cp.Tag
		kept := rec.Catalogs[:0]
		for _, rc := range rec.Catalogs {
			if rc.Reference != ref {
				kept = append(kept, rc)
			}
		}
		rec.Catalogs = append(kept, RecordedCatalg{Reference: ref, Digest: cp.Rebuilt.Digest.String(), Source: cp.Plan.Source})
	}
	for _, sig := range p.Signatures {
		dup := false
		for _, old := range rec.Signatures {
			dup = dup || old.Digest == sig.Digest
		}
		if !dup {
			rec.Signatures = append(rec.Signatures, sig)
		}
	}
	sort.Slice(rec.Images, func(a, b int) bool { return rec.Images[a].Ref < rec.Images[b].Ref })
	raw, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(l.Dir(), RecordFile)
	if err := os.WriteFile(path+".tmp", append(raw, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

// ReadRecord reads the record a mirror-to-disk run left in dir.
func ReadRecord(dir string) (*Record, error) {
	raw, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		return nil, err
	}
	var rec Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, RecordFile), err)
	}
	return &rec, nil
}

// fromDir plans disk to mirror: every image the directory's record lists
// that the configuration names, pushed under the prefix.
func (p *Plan) fromDir(c *mirror.Client) error {
	l := p.req.FromDir
	rec, err := ReadRecord(l.Dir())
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s has no %s: was it written by berth mirror apply --to-dir?", l.Dir(), RecordFile)
	}
	if err != nil {
		return err
	}
	p.recorded = rec
	p.prefix = strings.TrimSuffix(strings.TrimPrefix(p.req.To, "docker://"), "/")
	want, notes, err := selectRecorded(p.req.Config, rec)
	if err != nil {
		return err
	}
	p.Notes = append(p.Notes, notes...)
	all, err := c.LayoutJobs(l, p.prefix)
	if err != nil {
		return err
	}
	cats := map[string]Category{}
	for _, im := range rec.Images {
		cats[im.Ref] = im.Category
	}
	for _, rc := range rec.Catalogs {
		cats[rc.Reference] = Catalog
	}
	for _, j := range all {
		ref := j.SrcRepo + ":" + j.SrcRef
		if strings.Contains(j.SrcRef, ":") {
			ref = j.SrcRepo + "@" + j.SrcRef
		}
		cat, ok := cats[ref]
		if !ok {
			p.Notes = append(p.Notes, fmt.Sprintf("%s: in the directory but not written by an image set; not pushed", ref))
			continue
		}
		if !want[ref] {
			continue
		}
		p.Jobs = append(p.Jobs, j)
		p.Categories = append(p.Categories, cat)
	}
	releases := false
	for _, c := range p.Categories {
		releases = releases || c == Release
	}
	if !releases {
		rec.Signatures = nil
	}
	kept := rec.Catalogs[:0]
	for _, rc := range rec.Catalogs {
		if want[rc.Reference] {
			kept = append(kept, rc)
		}
	}
	rec.Catalogs = kept
	if !want[rec.Graph] {
		rec.Graph = ""
	}
	return nil
}

// selectRecorded picks what of the record the configuration names: its
// catalogs (with their bundles and related images, which the record keeps
// as operator images of the same run), its additional images, its release
// channels (when the configuration has any) and the graph image. What the
// configuration names and the directory lacks is an error.
func selectRecorded(c *imageset.ImageSetConfiguration, rec *Record) (map[string]bool, []string, error) {
	want := map[string]bool{}
	var notes []string
	var errs []error
	m := c.Mirror
	sources := map[string]bool{}
	for _, im := range rec.Images {
		sources[im.Source] = true
	}
	catalogs := map[string]bool{}
	for _, rc := range rec.Catalogs {
		catalogs[rc.Source] = true
	}
	for i, o := range m.Operators {
		if !catalogs[catalogSource(o.Catalog)] {
			errs = append(errs, fmt.Errorf("%s: mirror.operators[%d] names catalog %s, which the directory does not hold: run the mirror-to-disk leg with this configuration", c.Where(fmt.Sprintf("mirror.operators[%d].catalog", i)), i, o.Catalog))
		}
	}
	for i, a := range m.AdditionalImages {
		if !sources[a.Name] && !anySourceOf(rec, a.Name) {
			errs = append(errs, fmt.Errorf("%s: mirror.additionalImages[%d] %s is not in the directory: run the mirror-to-disk leg with this configuration", c.Where(fmt.Sprintf("mirror.additionalImages[%d].name", i)), i, a.Name))
		}
	}
	releases := len(m.Platform.Channels) > 0 || m.Platform.Release != ""
	named := map[string]bool{}
	for _, o := range m.Operators {
		named[catalogSource(o.Catalog)] = true
	}
	for _, im := range rec.Images {
		switch im.Category {
		case Release:
			want[im.Ref] = releases
		case Graph:
			want[im.Ref] = m.Platform.Graph
		case Operator:
			want[im.Ref] = want[im.Ref] || im.Catalog == "" || named[im.Catalog]
		default:
			want[im.Ref] = true
		}
	}
	for _, rc := range rec.Catalogs {
		want[rc.Reference] = false
		for _, o := range m.Operators {
			if catalogSource(o.Catalog) == rc.Source {
				want[rc.Reference] = true
			}
		}
		if !want[rc.Reference] {
			notes = append(notes, fmt.Sprintf("catalog %s is in the directory but not in the configuration; not pushed", rc.Source))
		}
	}
	if !releases {
		for _, im := range rec.Images {
			if im.Category == Release {
				notes = append(notes, "the directory holds release images the configuration does not name; not pushed")
				break
			}
		}
	}
	return want, notes, errors.Join(errs...)
}

func catalogSource(s string) string {
	if dir, ok := strings.CutPrefix(s, "oci:"); ok && !strings.HasPrefix(dir, "//") {
		return "oci://" + dir
	}
	return s
}

// anySourceOf matches an additional image written by tag and digest, or
// pulled by digest from a tag: the record keeps what was pulled.
func anySourceOf(rec *Record, n string) bool {
	base := n
	if i := strings.Index(base, "@"); i >= 0 {
		base = base[:i]
	}
	for _, im := range rec.Images {
		if im.Category == Generic && (strings.HasPrefix(im.Source, base+"@") || strings.HasPrefix(im.Source, base+":") || im.Source == base) {
			return true
		}
	}
	return false
}
