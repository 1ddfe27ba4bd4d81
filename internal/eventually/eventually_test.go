package eventually

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	var n atomic.Int64
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	if !Until(5*time.Second, func() bool { return n.Load() == 3 }) {
		t.Fatal("Until gave up on a condition that became true")
	}
	start := time.Now()
	if Until(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("Until reported a false condition as true")
	}
	if took := time.Since(start); took < 50*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Until returned after %s, want about 50ms", took)
	}
}
