// Package storagetest is the conformance suite every storage.Backend passes:
// each implementation's test is one call to Run.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/berth-registry/berth/internal/storage"
	"github.com/opencontainers/go-digest"
)

// Run checks the Backend contract on fresh backends made by newBackend.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	ctx := context.Background()
	put := func(t *testing.T, b storage.Backend, id string, data []byte) digest.Digest {
		t.Helper()
		if err := b.StartUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Append(ctx, id, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		d := digest.FromBytes(data)
		if err := b.Commit(ctx, id, d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	read := func(t *testing.T, b storage.Backend, d digest.Digest) []byte {
		t.Helper()
		r, err := b.Open(ctx, d)
		if err != nil {
			t.Fatalf("open %s: %v", d, err)
		}
		defer r.Close()
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// committed returns blob d's commit time, checking that Stat and Walk
	// agree on it (gc marks by Walk's and re-checks by Stat's).
	committed := func(t *testing.T, b storage.Backend, d digest.Digest) time.Time {
		t.Helper()
		info, err := b.Stat(ctx, d)
		if err != nil {
			t.Fatalf("Stat %s: %v", d, err)
		}
		var walked time.Time
		if err := b.Walk(ctx, func(wd digest.Digest, _ int64, at time.Time) error {
			if wd == d {
				walked = at
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !info.Committed.Equal(walked) {
			t.Fatalf("Stat says %s was committed at %v, Walk says %v", d, info.Committed, walked)
		}
		if time.Since(walked) > time.Minute || time.Until(walked) > time.Minute {
			t.Fatalf("blob %s committed at %v, not just now", d, walked)
		}
		return walked
	}

	t.Run("MissingBlob", func(t *testing.T) {
		b := newBackend(t)
		d := digest.FromString("nothing")
		if _, err := b.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Stat: want ErrNotFound, got %v", err)
		}
		if _, err := b.Open(ctx, d); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Open: want ErrNotFound, got %v", err)
		}
		if err := b.Delete(ctx, d); err != nil {
			t.Fatalf("Delete of a missing blob: %v", err)
		}
	})

	t.Run("RoundTripAndSeek", func(t *testing.T) {
		b := newBackend(t)
		data := bytes.Repeat([]byte("0123456789"), 1000)
		d := put(t, b, "u1", data)
		if info, err := b.Stat(ctx, d); err != nil || info.Size != int64(len(data)) {
			t.Fatalf("Stat = %+v, %v; want size %d", info, err, len(data))
		}
		if got := read(t, b, d); !bytes.Equal(got, data) {
			t.Fatal("bytes differ after round trip")
		}
		r, _ := b.Open(ctx, d)
		defer r.Close()
		if _, err := r.Seek(5, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 3)
		if _, err := io.ReadFull(r, p); err != nil || string(p) != "567" {
			t.Fatalf("after seek read %q, %v", p, err)
		}
		if _, err := b.UploadSize(ctx, "u1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("upload still present after commit: %v", err)
		}
	})

	t.Run("UploadInvisibleUntilCommit", func(t *testing.T) {
		b := newBackend(t)
		data := []byte("hello")
		d := digest.FromBytes(data)
		if err := b.StartUpload(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Append(ctx, "u", bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("blob visible before commit: %v", err)
		}
		if err := b.Abort(ctx, "u"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.UploadSize(ctx, "u"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("upload present after abort: %v", err)
		}
		if err := b.Commit(ctx, "u", d); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("commit of an aborted upload: want ErrNotFound, got %v", err)
		}
	})

	t.Run("ChunkedAppend", func(t *testing.T) {
		b := newBackend(t)
		if err := b.StartUpload(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for i := 0; i < 5; i++ {
			chunk := bytes.Repeat([]byte{byte('a' + i)}, 1000+i)
			all = append(all, chunk...)
			if n, err := b.Append(ctx, "c", bytes.NewReader(chunk)); err != nil || n != int64(len(chunk)) {
				t.Fatalf("append %d: %d, %v", i, n, err)
			}
			if sz, _ := b.UploadSize(ctx, "c"); sz != int64(len(all)) {
				t.Fatalf("size after chunk %d = %d, want %d", i, sz, len(all))
			}
		}
		r, err := b.OpenUpload(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(r)
		r.Close()
		if !bytes.Equal(got, all) {
			t.Fatal("OpenUpload returned different bytes")
		}
		d := digest.FromBytes(all)
		if err := b.Commit(ctx, "c", d); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(read(t, b, d), all) {
			t.Fatal("committed bytes differ")
		}
	})

	t.Run("FailedAppendLeavesUploadUnchanged", func(t *testing.T) {
		b := newBackend(t)
		if err := b.StartUpload(ctx, "f"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Append(ctx, "f", bytes.NewReader([]byte("good"))); err != nil {
			t.Fatal(err)
		}
		broken := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("x"), 5000)), errReader{})
		if _, err := b.Append(ctx, "f", broken); err == nil {
			t.Fatal("append from a failing reader succeeded")
		}
		if sz, err := b.UploadSize(ctx, "f"); err != nil || sz != 4 {
			t.Fatalf("size after failed append = %d, %v; want 4", sz, err)
		}
	})

	t.Run("AppendToMissingUpload", func(t *testing.T) {
		b := newBackend(t)
		if _, err := b.Append(ctx, "nope", bytes.NewReader([]byte("x"))); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})

	t.Run("DuplicateCommitKeepsFirst", func(t *testing.T) {
		b := newBackend(t)
		data := []byte("same bytes")
		d := put(t, b, "a", data)
		first := committed(t, b, d)
		time.Sleep(20 * time.Millisecond)
		put(t, b, "b", data)
		second := committed(t, b, d)
		if !second.After(first) {
			t.Errorf("a repeated commit did not refresh the commit time (%v then %v)", first, second)
		}
		if !bytes.Equal(read(t, b, d), data) {
			t.Fatal("blob changed on second commit")
		}
	})

	t.Run("DeleteAndWalk", func(t *testing.T) {
		b := newBackend(t)
		d1 := put(t, b, "w1", []byte("one"))
		d2 := put(t, b, "w2", []byte("two!"))
		seen := map[digest.Digest]int64{}
		if err := b.Walk(ctx, func(d digest.Digest, n int64, at time.Time) error {
			if time.Since(at) > time.Minute || time.Until(at) > time.Minute {
				t.Errorf("blob %s committed at %v, not just now", d, at)
			}
			seen[d] = n
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if seen[d1] != 3 || seen[d2] != 4 || len(seen) != 2 {
			t.Fatalf("walk saw %v", seen)
		}
		if err := b.Delete(ctx, d1); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Stat(ctx, d1); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted blob still there: %v", err)
		}
	})

	t.Run("ListUploads", func(t *testing.T) {
		b := newBackend(t)
		before := time.Now().Add(-time.Second)
		for _, id := range []string{"l1", "l2"} {
			if err := b.StartUpload(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		put(t, b, "l3", []byte("committed"))
		seen := map[string]bool{}
		if err := b.Uploads(ctx, func(id string, mod time.Time) error {
			if mod.Before(before) {
				t.Errorf("upload %s modified at %v, before it was made", id, mod)
			}
			seen[id] = true
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2 || !seen["l1"] || !seen["l2"] {
			t.Fatalf("Uploads listed %v, want l1 and l2", seen)
		}
	})

	t.Run("Touch", func(t *testing.T) {
		b := newBackend(t)
		if err := b.Touch(ctx, digest.FromString("absent")); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("touching a missing blob: %v", err)
		}
		d := put(t, b, "t1", []byte("touch me"))
		before := committed(t, b, d)
		time.Sleep(20 * time.Millisecond)
		if err := b.Touch(ctx, d); err != nil {
			t.Fatal(err)
		}
		after := committed(t, b, d)
		if !after.After(before) {
			t.Fatalf("Touch did not refresh the commit time (%v then %v)", before, after)
		}
	})

	t.Run("ConcurrentSameBlob", func(t *testing.T) {
		b := newBackend(t)
		data := bytes.Repeat([]byte("concurrent"), 10000)
		d := digest.FromBytes(data)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				id := "cc" + string(rune('a'+i))
				if err := b.StartUpload(ctx, id); err != nil {
					errs <- err
					return
				}
				if _, err := b.Append(ctx, id, bytes.NewReader(data)); err != nil {
					errs <- err
					return
				}
				errs <- b.Commit(ctx, id, d)
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(read(t, b, d), data) {
			t.Fatal("bytes differ after concurrent commits")
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// RunConditionalDelete checks a ConditionalDeleter: an old blob goes, a
// freshly (re)committed one stays and stays readable.
func RunConditionalDelete(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	cd, ok := b.(storage.ConditionalDeleter)
	if !ok {
		t.Fatal("backend is not a ConditionalDeleter")
	}
	data := []byte("conditional")
	d := digest.FromBytes(data)
	commit := func(id string) {
		if err := b.StartUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Append(ctx, id, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(ctx, id, d); err != nil {
			t.Fatal(err)
		}
	}
	commit("c1")
	if deleted, err := cd.DeleteIfCommittedBefore(ctx, d, time.Now().Add(-time.Hour)); err != nil || deleted {
		t.Fatalf("a fresh blob was deleted: %v, %v", deleted, err)
	}
	if _, err := b.Stat(ctx, d); err != nil {
		t.Fatalf("a kept blob is gone: %v", err)
	}
	n := 0
	_ = b.Walk(ctx, func(digest.Digest, int64, time.Time) error { n++; return nil })
	if n != 1 {
		t.Fatalf("Walk sees %d blobs after a kept conditional delete, want 1", n)
	}
	if deleted, err := cd.DeleteIfCommittedBefore(ctx, d, time.Now().Add(time.Hour)); err != nil || !deleted {
		t.Fatalf("an old blob was not deleted: %v, %v", deleted, err)
	}
	if _, err := b.Stat(ctx, d); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted blob still there: %v", err)
	}
	if deleted, err := cd.DeleteIfCommittedBefore(ctx, d, time.Now().Add(time.Hour)); err != nil || deleted {
		t.Fatalf("deleting a missing blob: %v, %v", deleted, err)
	}
	commit("c2") // the same bytes can be pushed again
	if _, err := b.Stat(ctx, d); err != nil {
		t.Fatal(err)
	}
}
