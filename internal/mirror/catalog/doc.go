// Package catalog filters file-based operator catalogs (FBC) the way an
// ImageSetConfiguration's mirror.operators[] entry asks, and rebuilds the
// catalog image around the filtered configs.
//
// It owns three things:
//   - the FBC model: olm.package, olm.channel and olm.bundle objects parsed
//     from JSON streams and YAML documents in a configs directory, each kept
//     with its raw JSON so what is written back is what was read; other
//     schemas (olm.deprecations, …) are kept verbatim when they concern a
//     kept package;
//   - the filter (Filter, Config.Apply): heads only by default, version
//     ranges per package or channel, full catalogs or packages, dependency
//     closure over olm.package.required and olm.gvk.required, and the
//     invariant that every kept channel is an upgrade graph with exactly one
//     head and every package keeps a valid default channel. Apply returns a
//     decision log and every bundle and related image to mirror. Kept
//     entries keep their replaces, skips and skipRange even where these
//     name bundles the filter dropped: such edges are how OLM upgrades an
//     installed version the mirror no longer carries (a heads-only rerun
//     after the head moved), they add no head, and opm accepts them.
//     Version ranges are strict: a range that leaves a channel with two
//     heads is an error, not silently widened. Bundles added for
//     dependencies do pull in the replaces chain between them and what
//     their channel already keeps, so that channel keeps one head;
//   - the rebuild (Read, Rebuild): the FBC is extracted from the image's
//     layers (the directory named by the operators.operatorframework.io.
//     index.configs.v1 label, whiteouts applied, streamed), and one new layer
//     is appended that replaces the configs directory and the image's
//     `opm serve --cache-dir` cache (regenerated in opm's json cache format,
//     its integrity digest included) so the image's own command starts on it
//     with --cache-enforce-integrity. Everything else in the image is kept;
//     a multi-arch index gets a new manifest per platform and a new index.
//     The result is reproducible: same input, same digests.
//
// It reads and writes images only through internal/mirror's Source and
// Target interfaces; it must not import cobra, the registry server or the
// ImageSetConfiguration parser (which embeds Filter).
package catalog
