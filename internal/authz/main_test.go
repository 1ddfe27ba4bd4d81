package authz_test

import (
	"os"
	"testing"
)

// TestMain runs the tests, or, when BenchmarkCheck started this binary as
// its load generator (loadEnv set), only the load.
func TestMain(m *testing.M) {
	if job := os.Getenv(loadEnv); job != "" {
		generate(job)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
