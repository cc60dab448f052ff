package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-registry/berth/internal/mirror"
	"github.com/berth-registry/berth/internal/mirror/mirrortest"
)

// writeReleaseLayout mirrors a synthetic payload into a new layout and
// returns the layout directory and the payload.
func writeReleaseLayout(t *testing.T, spec mirrortest.ReleaseSpec) (string, *mirrortest.Release) {
	t.Helper()
	src := mirrortest.StartRegistry(t)
	rel, err := mirrortest.PushRelease(context.Background(), src, spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	l, err := mirror.OpenLayout(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	var jobs []mirror.Job
	for _, comp := range rel.Components {
		j, err := c.DirJob(comp.Ref, l, "ocp/release:"+comp.Name)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	if err := mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs).Err(); err != nil {
		t.Fatal(err)
	}
	return dir, rel
}

// Pack into archives smaller than most blobs, unpack, push: every digest
// arrives, every archive respects the limit, big blobs are split.
func TestArchiveRoundTrip(t *testing.T) {
	const limit = 32 << 10
	dir, rel := writeReleaseLayout(t, mirrortest.ReleaseSpec{Components: 5, MultiArchEvery: 3, LayerSize: 48 << 10})
	adir := filepath.Join(t.TempDir(), "dvd")
	set, err := mirror.PackLayout(context.Background(), dir, adir, limit)
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Archives) < 3 {
		t.Errorf("%d archives, want several", len(set.Archives))
	}
	for i, a := range set.Archives {
		fi, err := os.Stat(filepath.Join(adir, a.Name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > limit || fi.Size() != a.Size || a.Name != mirror.ArchiveName(i+1) {
			t.Errorf("%s: %d bytes on disk, %d in the manifest, limit %d", a.Name, fi.Size(), a.Size, limit)
		}
	}
	split := 0
	for _, f := range set.Files {
		if len(f.Parts) > 1 {
			split++
		}
	}
	if split == 0 {
		t.Error("no file was split across archives, yet layers are larger than the limit")
	}

	out := filepath.Join(t.TempDir(), "unpacked")
	var last, total, calls int64
	st, err := mirror.UnpackArchivesWith(context.Background(), adir, out, mirror.UnpackOptions{Progress: func(done, all int64) {
		if done < last {
			t.Errorf("progress went back from %d to %d", last, done)
		}
		last, total = done, all
		calls++
	}})
	if err != nil {
		t.Fatal(err)
	}
	var archived int64
	for _, a := range set.Archives {
		archived += a.Size
	}
	if calls < int64(len(set.Archives)) || last != archived || total != archived {
		t.Errorf("progress: %d calls, last %d of %d; want every archive byte (%d) reported", calls, last, total, archived)
	}
	if st.Archives != len(set.Archives) || st.Files != len(set.Files) {
		t.Errorf("unpacked %+v, want %d archives and %d files", st, len(set.Archives), len(set.Files))
	}
	for _, f := range set.Files {
		a, _ := os.ReadFile(filepath.Join(dir, f.Path))
		b, err := os.ReadFile(filepath.Join(out, f.Path))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs after the round trip (%v)", f.Path, err)
		}
	}
	dst := mirrortest.StartRegistry(t)
	l, err := mirror.OpenLayout(out, false)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := newClient(t).LayoutJobs(l, dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs).Err(); err != nil {
		t.Fatal(err)
	}
	for _, comp := range rel.Components {
		if got := headDigest(t, dst+"/ocp/release:"+comp.Name); got.String() != comp.Digest {
			t.Errorf("%s: %s, want %s", comp.Name, got, comp.Digest)
		}
	}
	t.Logf("%d files in %d archives, %d split", len(set.Files), len(set.Archives), split)
}

// A damaged or missing archive is named, and nothing usable is left: the
// unpacked directory has no index.json to push from.
func TestArchiveDamage(t *testing.T) {
	dir, _ := writeReleaseLayout(t, mirrortest.ReleaseSpec{Components: 3, LayerSize: 40 << 10})
	pack := func(t *testing.T) (string, *mirror.ArchiveSet) {
		adir := filepath.Join(t.TempDir(), "archives")
		set, err := mirror.PackLayout(context.Background(), dir, adir, 24<<10)
		if err != nil {
			t.Fatal(err)
		}
		if len(set.Archives) < 3 {
			t.Fatalf("%d archives, want at least 3", len(set.Archives))
		}
		return adir, set
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, adir string, victim string)
		want   error
	}{
		{"corrupt byte", func(t *testing.T, adir, victim string) {
			p := filepath.Join(adir, victim)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x40
			os.WriteFile(p, b, 0o644)
		}, mirror.ErrArchiveCorrupt},
		{"truncated", func(t *testing.T, adir, victim string) {
			p := filepath.Join(adir, victim)
			fi, _ := os.Stat(p)
			os.Truncate(p, fi.Size()-700)
		}, mirror.ErrArchiveCorrupt},
		{"missing", func(t *testing.T, adir, victim string) {
			os.Remove(filepath.Join(adir, victim))
		}, mirror.ErrArchiveMissing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			adir, set := pack(t)
			victim := set.Archives[1].Name
			tc.damage(t, adir, victim)
			out := filepath.Join(t.TempDir(), "unpacked")
			_, err := mirror.UnpackArchives(context.Background(), adir, out)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), victim) {
				t.Fatalf("err = %v, want %v naming %s", err, tc.want, victim)
			}
			var ae *mirror.ArchiveError
			if !errors.As(err, &ae) || ae.Archive != victim {
				t.Errorf("ArchiveError names %+v, want %s", ae, victim)
			}
			if _, err := os.Stat(filepath.Join(out, "index.json")); err == nil {
				t.Error("index.json was unpacked from a damaged set")
			}
			if _, err := mirror.OpenLayout(out, false); err == nil {
				if _, err := os.Stat(filepath.Join(out, mirror.CatalogFile)); err == nil {
					t.Error("a damaged set unpacked into a usable layout")
				}
			}
		})
	}
}

// The archive manifest comes off removable media: no path it names may
// leave the layout, and no input may panic the reader.
func FuzzReadArchiveSet(f *testing.F) {
	f.Add([]byte(`{"version":1,"maxSize":16384,"archives":[{"name":"berth-archive-0001.tar","size":2048,"digest":"sha256:` + strings.Repeat("a", 64) + `"}],"files":[{"path":"oci-layout","digest":"sha256:` + strings.Repeat("b", 64) + `","size":5,"parts":[{"archive":"berth-archive-0001.tar","entry":"oci-layout","size":5}]}]}`))
	f.Add([]byte(`{"version":1,"files":[{"path":"../etc/passwd","parts":[]}]}`))
	f.Add([]byte(`{"version":1,"files":[{"path":"/abs","parts":[]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := mirror.ReadArchiveSet(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, fl := range s.Files {
			if !filepath.IsLocal(fl.Path) || strings.HasPrefix(fl.Path, ".") || strings.Contains(fl.Path, "/.") {
				t.Fatalf("accepted path %q", fl.Path)
			}
		}
	})
}

// Pushing straight from the archives: the big blobs stay in them (the
// extracted directory holds only small files), every digest arrives, and
// a blob damaged inside an archive fails its image only, never landing at
// the destination.
func TestOpenArchivesStreams(t *testing.T) {
	dir, rel := writeReleaseLayout(t, mirrortest.ReleaseSpec{Components: 5, MultiArchEvery: 3, LayerSize: 48 << 10})
	adir := filepath.Join(t.TempDir(), "dvd")
	set, err := mirror.PackLayout(context.Background(), dir, adir, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	opts := mirror.StreamAboveForTests(mirror.UnpackOptions{}, 16<<10)
	push := func(t *testing.T) (*mirror.Summary, string, string) {
		meta := filepath.Join(t.TempDir(), "meta")
		l, _, err := mirror.OpenArchives(context.Background(), adir, meta, opts)
		if err != nil {
			t.Fatal(err)
		}
		dst := mirrortest.StartRegistry(t)
		jobs, err := newClient(t).LayoutJobs(l, dst)
		if err != nil {
			t.Fatal(err)
		}
		return mirror.NewCopier(mirror.Options{}).Run(context.Background(), jobs), dst, meta
	}
	s, dst, meta := push(t)
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	for _, comp := range rel.Components {
		if got := headDigest(t, dst+"/ocp/release:"+comp.Name); got.String() != comp.Digest {
			t.Errorf("%s: %s, want %s", comp.Name, got, comp.Digest)
		}
	}
	var big, extracted int
	for _, f := range set.Files {
		if f.Size <= 16<<10 {
			continue
		}
		big++
		if _, err := os.Stat(filepath.Join(meta, f.Path)); err == nil {
			extracted++
		}
	}
	if big == 0 || extracted > 0 {
		t.Errorf("%d of %d big blobs were extracted; want them all streamed from the archives", extracted, big)
	}

	// Damage one byte in the middle of a big blob's bytes.
	var victim mirror.ArchivedFile
	for _, f := range set.Files {
		if f.Size > 16<<10 && len(f.Parts) == 1 {
			victim = f
			break
		}
	}
	apath := filepath.Join(adir, victim.Parts[0].Archive)
	raw, _ := os.ReadFile(apath)
	i := bytes.Index(raw, []byte(victim.Parts[0].Entry))
	if i < 0 {
		t.Fatal("victim entry not found")
	}
	raw[i+512+int(victim.Size)/2] ^= 0xff
	os.WriteFile(apath, raw, 0o644)
	s, dst, _ = push(t)
	if s.Err() == nil {
		t.Fatal("a damaged blob was pushed without error")
	}
	resp, err := http.Head("http://" + dst + "/v2/ocp/release/blobs/" + victim.Digest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("the damaged blob %s reached the destination", victim.Digest)
	}
	if s.Failed == 0 || s.Failed == len(rel.Components) {
		t.Errorf("%d of %d images failed; want only those using the damaged blob", s.Failed, len(rel.Components))
	}
}
