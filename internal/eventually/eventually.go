// Package eventually waits for a condition with a deadline: the one way
// jwtrevoke's tests (and its test helpers) wait for something another
// goroutine or process makes true, instead of sleeping and hoping.
package eventually

import (
	"testing"
	"time"
)

// pollInterval is how often a condition is evaluated again.
const pollInterval = 2 * time.Millisecond

// Until evaluates cond every few milliseconds until it holds or timeout has
// passed, and reports whether it held. cond is evaluated once more at the
// deadline.
func Until(timeout time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond()
		}
	}
}

// True waits like Until and fails tb if cond does not hold within timeout;
// what names the condition in the failure message.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Until(timeout, cond) {
		tb.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}
