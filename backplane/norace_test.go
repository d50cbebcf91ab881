//go:build !race

package backplane_test

const raceEnabled = false
