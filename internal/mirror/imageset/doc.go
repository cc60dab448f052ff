// Package imageset reads oc-mirror v2 image set files and turns them into a
// mirror plan: which releases, catalogs and images go where, and the
// cluster resources that make a cluster use the mirror.
//
// It owns: the mirror.openshift.io/v2alpha1 ImageSetConfiguration and
// DeleteImageSetConfiguration types and their strict parser (an unknown
// field, a wrong YAML type or an invalid value is a Problem naming file,
// line, column and YAML path; every problem is reported at once); the
// update-graph (Cincinnati) client and release selection; the plan
// (destination naming as oc-mirror v2 names things under
// --to REGISTRY[/PREFIX], blockedImages applied with the reason kept) and
// its dry-run rendering; reading release signatures from a signature store;
// and the CatalogSource, ClusterCatalog, UpdateService, release-signature
// ConfigMap and per-category mirror set files.
//
// The flow, for `berth mirror apply`:
//
//	isc, err := imageset.ReadImageSetConfiguration(file)        // strict
//	plan, err := imageset.NewPlan(ctx, isc, &imageset.GraphClient{URL: updateService},
//		imageset.PlanOptions{Target: to})                        // releases resolved
//	plan.WriteDryRun(os.Stdout)                                  // --dry-run
//	// copy: plan.Releases (mirror.ReadPayload, then mirror.PlanRelease with
//	// plan.ReleaseTarget(payload)), plan.Graph, plan.Images, plan.Catalogs
//	// (filtered by package catalog); plan.BlockedBy for what the copy finds.
//	files, err := imageset.ClusterResources{...}.Files()        // cluster-resources/
//
// It does not copy anything, read release payloads or filter catalogs: the
// copy engine and release reading are package mirror's, catalog filtering
// is package catalog's (a planned Catalog carries its Operator entry
// unchanged; the field names are the same). It must not import cobra, the
// registry server or the policy renderer.
//
// Release selection, per channel and architecture, as oc-mirror v2 resolves
// it: no bounds, the channel head; minVersion only, up to the head;
// maxVersion only, from the channel's lowest version; full, everything
// (from minVersion when set); shortestPath, the shortest update path (BFS
// over the graph's edges) from minVersion to maxVersion. Releases selected
// by several channels are one. With two or more OCP channels, the shortest
// update path from the lowest selected version to the highest is added,
// walking the channels in between by name, as oc-mirror does.
//
// Naming, as oc-mirror v2 does under a destination prefix P:
//   - release image:      P/openshift/release-images:<version>-<arch>
//   - release components: P/openshift/release:<version>-<arch>-<component>
//   - graph-data image:   P/openshift/graph-image:latest
//   - additional image:   P/<path>:<tag>, or P/<path>:sha256-<hex> for a
//     digest-only source (targetRepo and targetTag replace path and tag;
//     a source with tag and digest is pulled by the digest, pushed by the
//     tag);
//   - catalog:            P/<targetCatalog, or the path, or an oci:// layout's
//     directory name>:<targetTag, or the tag, latest for a layout, or
//     sha256-<hex> for a digest-only reference>.
//
// <arch> is the release tooling's spelling (x86_64, aarch64, ppc64le,
// s390x, multi). With no Target (a directory), destinations are the same
// repository paths without P.
package imageset
