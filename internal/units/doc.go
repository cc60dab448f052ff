// Package units reads and writes byte counts for the whole binary: flags
// and config fields that take a size (--archive-size, --blob-size …) parse
// with ParseBytes, and every size shown to a person is printed by
// FormatBytes. It imports nothing of Berth's.
//
// The grammar, case-insensitive, optional space before the unit:
//
//	512                    bytes
//	512B                   bytes
//	4k, 4KiB               4 × 1024 (K, M, G, T and KiB … TiB are binary)
//	4KB                    4 × 1000 (KB, MB, GB, TB are decimal, as on disks)
//	4.7GB, 1.5GiB          a decimal fraction, rounded down to whole bytes
//
// A single letter is binary because that is what `dd bs=4k`, ulimit and
// most tools mean by it; the two-letter decimal units are what a disk's
// label means.
package units
