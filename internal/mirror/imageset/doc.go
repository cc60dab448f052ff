// Package imageset reads oc-mirror v2 image set files and turns them into a
// mirror plan: which releases, catalogs and images go where, and the
// cluster resources that make a cluster use the mirror.
//
// It owns: the mirror.openshift.io/v2alpha1 ImageSetConfiguration and
// DeleteImageSetConfiguration types and their strict parser (an unknown
// field, a wrong type or an invalid value is a Problem naming file, line,
// column and YAML path; every problem is reported at once); the update-graph
// (Cincinnati) client and release selection; the plan (destination naming as
// oc-mirror v2 names things under --to REGISTRY[/PREFIX], blockedImages
// applied with the reason kept) and its dry-run rendering; and the
// CatalogSource, ClusterCatalog, UpdateService and release-signature
// ConfigMap writers.
//
// It does not copy anything, read release payloads or filter catalogs: the
// copy engine and release reading are package mirror's (a planned Release
// gives the mirror.ReleaseTarget that mirror.PlanRelease takes), catalog
// filtering is package catalog's (a planned Catalog carries its Operator
// entry unchanged). It must not import cobra, the registry server or the
// policy renderer.
//
// Naming, as oc-mirror v2 does under a destination prefix P:
//   - release image:      P/openshift/release-images:<version>-<arch>
//   - release components: P/openshift/release:<version>-<arch>-<component>
//   - graph-data image:   P/openshift/graph-image:latest
//   - additional image:   P/<path>:<tag>, or P/<path>:sha256-<hex> for a
//     digest-only source (targetRepo and targetTag replace path and tag);
//   - catalog:            P/<targetCatalog or path>:<targetTag or tag>.
//
// <arch> is the release tooling's spelling (x86_64, aarch64, ppc64le,
// s390x, multi).
package imageset
