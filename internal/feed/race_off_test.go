//go:build !race

package feed_test

// raceEnabled shrinks the large tests: the race detector slows the server
// and the client about tenfold.
const raceEnabled = false
