package api

import "testing"

// FuzzCacheBlobRange feeds arbitrary Range headers, against known and
// unknown sizes, to the range reader of blobs still being filled: the
// answer is the whole blob, or a range inside it, or a refusal.
func FuzzCacheBlobRange(f *testing.F) {
	for _, s := range []string{"bytes=0-9", "bytes=5-", "bytes=-3", "bytes=9-2", "bytes=0-0,2-3", "bytes=100-200", "items=0-1", "bytes=", "", "bytes=-0", "bytes=18446744073709551615-"} {
		f.Add(s, int64(36))
		f.Add(s, int64(-1))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < -1 {
			size = -1
		}
		start, end, partial, err := blobRange(h, size)
		if err != nil {
			return
		}
		if !partial {
			if start != 0 || end != size {
				t.Fatalf("blobRange(%q, %d): not partial but [%d, %d)", h, size, start, end)
			}
			return
		}
		if start < 0 || end <= start || (size >= 0 && end > size) || (size < 0 && end >= 0 && end <= start) {
			t.Fatalf("blobRange(%q, %d) = [%d, %d)", h, size, start, end)
		}
	})
}
