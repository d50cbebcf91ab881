//go:build race

package backplane_test

// raceEnabled says the race detector is on; it allocates, so allocation
// counts are checked only without it.
const raceEnabled = true
