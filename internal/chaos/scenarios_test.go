package chaos

import "testing"

// TestBaseline: no fault; the checker must find nothing and the lag is the
// system's plain propagation time.
func TestBaseline(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.start()
	hold(2 * e.sz.phase)
	e.finish(t, "baseline", "none")
}
