//go:build !linux

package noderoot

// exchange has no atomic form outside Linux; Write falls back to two renames.
func exchange(a, b string) error { return errNoExchange }

// syncDir is a no-op here: not every system can fsync a directory (Windows
// cannot open one for it). Files are still fsynced before the swap, so a
// crash leaves the old or the new root; only the renames' durability after
// a power loss is the file system's.
func syncDir(string) error { return nil }
