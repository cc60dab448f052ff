// Package bench measures a container registry — any registry that speaks the
// OCI Distribution API over HTTP, Berth or a peer — with one fixed workload,
// next to this machine's own ceilings measured in the same run. It is a bare
// net/http client with no retries, so what it times is the server.
//
// It must not import the registry's own packages (api, registry, storage,
// metadata): it sees a registry only through its URL. It speaks HTTP/1.1,
// plain or TLS (--insecure accepts a self-signed certificate), with keep-alive
// connections, no proxy and no compression, and does not authenticate.
//
// # Workload
//
// Every run does the same steps, in this order; only the sizes below are
// parameters (defaults in parentheses, flags of `berth bench`).
//
//  0. GET /v2/ must answer 200 (bench does not authenticate).
//  1. Ceilings, while the registry idles:
//     - sha256: one goroutine hashes max(blob size, 64 MiB) of a reused 4 MiB
//     random buffer;
//     - durable write: a new file of exactly the blob size is written from
//     that buffer into --ceiling-dir and fsynced; the time includes the fsync;
//     - loopback TCP: max(blob size, 64 MiB) sent over one TCP connection on
//     127.0.0.1 to a goroutine that discards it, timed until it has all.
//  2. Large blob (--blob-size 1 GiB), repository <repo>/blob. Two distinct
//     blobs' digests are computed first (not timed). Then, timed each:
//     - monolithic push: POST /v2/<repo>/blob/blobs/uploads/, then one
//     PUT <location>?digest= carrying the whole blob (must answer 201);
//     - chunked push of the second blob: POST, then PATCH <location> per
//     --chunk-size (16 MiB) slice with Content-Range: <start>-<end>
//     (inclusive) and Content-Length, each answering 202 with the next
//     Location, then PUT <location>?digest= with no body (201);
//     - pull: GET /v2/<repo>/blob/blobs/<digest> of the monolithic blob, the
//     body checked while it is read (see Verification).
//     Figure: blob bytes / elapsed, in MiB/s.
//  3. Small images (--images 100), repository <repo>/images, tags img-0000…:
//     each is 3 layers of 1 MiB (media type ...layer.v1.tar, random bytes),
//     an OCI config naming the layers as diff_ids, and an OCI image manifest
//     (all described before timing). With --workers (8) workers, each taking
//     the next image:
//     - push: each layer and the config by POST + PUT ?digest= with the body,
//     then PUT /v2/<repo>/images/manifests/<tag>;
//     - pull: GET the manifest by tag (hashed and checked against its digest;
//     it must list the config and layers pushed), then GET the config
//     (hashed) and every layer (checked as in Verification).
//     Figures: images / elapsed of the phase, and p50/p99 of the time each
//     image took (nearest-rank percentiles).
//  4. Manifest GET (--manifest-workers 64 for --duration 10s): worker w
//     requests tags w, w+64, w+128, … (modulo the image count) of
//     <repo>/images, reading and hashing every body; requests cut off by the
//     deadline are not counted. Figures: requests / elapsed, p50/p99.
//
// Any status other than the one named above stops the run with the
// registry's error. A digest mismatch does not: the phase reports
// digest_ok=false and the command exits non-zero after printing.
//
// # Content
//
// Blob bytes are the AES-128-CTR keystream under a key derived from
// (seed, label) — incompressible, generated at several GiB/s while streaming,
// never held in memory, and the same for a given seed whatever the read
// sizes. The seed is random unless --seed is given, so repeated runs against
// one registry push new bytes rather than blobs it already has; it is
// reported. Run against an empty registry for comparable numbers.
//
// # Verification
//
// Bytes are checked while they stream, never buffered. Manifests and configs
// are hashed with sha256. Generated blobs (the large blob, the layers) are
// compared byte for byte with their regenerated stream instead, whose sha256
// is the digest they were pushed under: the same proof, at a fraction of the
// CPU. On a machine without SHA instructions one core hashes more slowly than
// a fast registry serves, and hashing would make the pull figures measure
// this client. The digests themselves are computed before the timed phases.
//
// # Server usage
//
// With --pid (Linux only), the server's CPU time (utime+stime from
// /proc/PID/stat, in USER_HZ=100 ticks) is read at each phase's start and
// end, and VmRSS from /proc/PID/status is sampled every 50 ms. A phase's peak
// RSS is the largest sample during it; the whole run's peak is the largest of
// every sample and of VmHWM (which covers spikes between samples, but can be
// reset, hence the sampling).
//
// # Output
//
// WriteTable prints an aligned table. With --output json the Report is
// printed; its field names are stable:
//
//	target, seed, started (RFC 3339)
//	workload: blob_size_bytes, chunk_size_bytes, images, layers_per_image,
//	          layer_size_bytes, workers, manifest_workers, manifest_duration_s
//	ceilings: sha256_mib_s, durable_write_mib_s, loopback_tcp_mib_s
//	blob_push_monolithic, blob_push_chunked, blob_pull:
//	          bytes, seconds, mib_s, digest, digest_ok, server
//	images_push, images_pull, manifest_get:
//	          count, seconds, per_s, p50_ms, p99_ms, digest_ok, server
//	server (whole run; per phase as above; absent without --pid):
//	          cpu_s, peak_rss_bytes
//
// WriteComparison prints the medians of several saved reports per registry
// side by side (`berth bench compare`, used by scripts/bench-compare.sh).
package bench
