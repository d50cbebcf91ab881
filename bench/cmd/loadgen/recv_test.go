package main

import (
	"context"
	"testing"
	"time"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for v := int64(0); v < 1<<20; v++ {
		b := bucketOf(v)
		if b < prev || b > prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d", v, b, prev)
		}
		prev = b
		mid := bucketValue(b)
		if d := float64(mid-v) / float64(max(v, 1)); d > 1.0/32 || d < -1.0/32 {
			t.Fatalf("bucketValue(bucketOf(%d)) = %d", v, mid)
		}
	}
	if b := bucketOf(1 << 62); b >= histBuckets {
		t.Fatalf("bucketOf(1<<62) = %d", b)
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	for i := int64(1); i <= 1000; i++ {
		h.record(int(i), i*int64(time.Microsecond))
	}
	q := h.quantiles(0.5, 0.99, 1)
	want := []int64{500_000, 990_000, 1_000_000}
	for i := range q {
		if d := float64(q[i]-want[i]) / float64(want[i]); d > 0.02 || d < -0.02 {
			t.Fatalf("quantiles = %v, want about %v", q, want)
		}
	}
}

func TestCounterWait(t *testing.T) {
	var c counter
	done := make(chan bool)
	go func() { done <- c.wait(context.Background(), 3, time.Minute) }()
	for range 3 {
		c.add(1)
	}
	// The waiter may start after the adds; either way it sees 3.
	if !<-done {
		t.Fatal("wait returned false")
	}
	if c.wait(context.Background(), 4, time.Millisecond) {
		t.Fatal("wait for 4 of 3 returned true")
	}
}
