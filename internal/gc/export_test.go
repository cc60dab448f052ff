package gc

// Hooks for the external tests (package gc_test, which may import
// servertest; this package may not, since the server imports it).

// WithAfterMark returns o set to call f between the mark and the sweep.
func WithAfterMark(o Options, f func()) Options { o.afterMark = f; return o }

var (
	PlanPrune  = planPrune
	DeletePlan = deletePlan
)
