package main

import "testing"

func TestShards(t *testing.T) {
	for _, tc := range []struct{ n, perProc, want int }{
		{1000, 19500, 1}, {19500, 19500, 1}, {19501, 19500, 2}, {100000, 19500, 6}, {30000, 15000, 2}, {5, 0, 1},
	} {
		k := shardCount(tc.n, tc.perProc)
		if k != tc.want {
			t.Errorf("shardCount(%d, %d) = %d, want %d", tc.n, tc.perProc, k, tc.want)
			continue
		}
		sum, lo, hi := 0, tc.n, 0
		for i := range k {
			s := shardShare(tc.n, k, i)
			sum += s
			lo, hi = min(lo, s), max(hi, s)
		}
		if sum != tc.n || hi-lo > 1 || (tc.perProc > 0 && hi > tc.perProc) {
			t.Errorf("n=%d over %d processes: shares sum to %d, range %d..%d (limit %d)", tc.n, k, sum, lo, hi, tc.perProc)
		}
	}
}
