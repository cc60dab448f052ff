// Package apply carries out an ImageSetConfiguration: it resolves the plan
// package imageset makes (release channels through the update graph,
// additional images, operator catalogs) into copy jobs — reading every
// release payload and filtering every catalog with package catalog — then
// rebuilds the catalogs and says what the cluster must be told (the
// cluster resources). It serves the three workflows of `berth mirror
// apply`: mirror to mirror, mirror to disk (the directory keeps a record,
// RecordFile, of what it holds and why) and disk to mirror (which replays
// the record: no source registry, update graph or catalog is needed).
//
// It plans and reports; the copy engine (package mirror) copies. Nothing is
// written before the whole plan resolved: a bad configuration, an unknown
// package or an impossible version range stops the run with every problem
// named and nothing pushed.
package apply
