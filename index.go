package signalhub

// multimap is a map from a key to a set of values that frees a key's set
// when it becomes empty, so that forgotten users and groups cost nothing.
// It is pure data: no locks, I/O or goroutines. The zero value is ready.
type multimap[K, V comparable] struct {
	m map[K]map[V]struct{}
}

// add puts v in k's set and reports whether it was not there yet.
func (mm *multimap[K, V]) add(k K, v V) bool {
	if mm.m == nil {
		mm.m = make(map[K]map[V]struct{})
	}
	set, ok := mm.m[k]
	if !ok {
		set = make(map[V]struct{}, 1)
		mm.m[k] = set
	}
	if _, dup := set[v]; dup {
		return false
	}
	set[v] = struct{}{}
	return true
}

// remove takes v out of k's set, frees the set when it empties, and reports
// whether v was there.
func (mm *multimap[K, V]) remove(k K, v V) bool {
	set, ok := mm.m[k]
	if !ok {
		return false
	}
	if _, ok := set[v]; !ok {
		return false
	}
	delete(set, v)
	if len(set) == 0 {
		delete(mm.m, k)
	}
	return true
}

// get returns k's set, nil when empty. Callers must not modify it.
func (mm *multimap[K, V]) get(k K) map[V]struct{} { return mm.m[k] }

// has reports whether v is in k's set.
func (mm *multimap[K, V]) has(k K, v V) bool {
	_, ok := mm.m[k][v]
	return ok
}

// keys reports how many keys have a non-empty set.
func (mm *multimap[K, V]) keys() int { return len(mm.m) }
