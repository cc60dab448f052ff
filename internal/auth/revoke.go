package auth

import "sync/atomic"

// RevocationSet is the ids of revoked robot tokens, as last read from where
// they are recorded (berth serve refreshes it from the metadata store on a
// timer, so checking a request costs a map lookup, not a query). The zero
// value, and a nil set, revoke nothing.
type RevocationSet struct {
	ids atomic.Pointer[map[string]struct{}]
}

// Set replaces the revoked ids.
func (r *RevocationSet) Set(ids []string) {
	m := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		m[id] = struct{}{}
	}
	r.ids.Store(&m)
}

// Revoked tells whether the token id is revoked.
func (r *RevocationSet) Revoked(id string) bool {
	if r == nil || id == "" {
		return false
	}
	m := r.ids.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[id]
	return ok
}

// Len is the number of revoked ids.
func (r *RevocationSet) Len() int {
	if r == nil {
		return 0
	}
	if m := r.ids.Load(); m != nil {
		return len(*m)
	}
	return 0
}
