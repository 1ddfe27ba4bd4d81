// Package runverifier starts a pkg/verifier Verifier for a test, as a
// service does: built, running, ready, and stopped when the test ends.
package runverifier

import (
	"context"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// readyTimeout bounds the wait for the first replay.
const readyTimeout = 20 * time.Second

// Ready builds a Verifier from cfg, runs it until tb ends and waits until it
// is ready; any failure fails tb.
func Ready(tb testing.TB, cfg verifier.Config) *verifier.Verifier {
	tb.Helper()
	v, err := verifier.New(cfg)
	if err != nil {
		tb.Fatalf("verifier.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = v.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done; v.Close() })
	wctx, wcancel := context.WithTimeout(context.Background(), readyTimeout)
	defer wcancel()
	if err := v.WaitReady(wctx); err != nil {
		tb.Fatalf("verifier not ready: %v", err)
	}
	return v
}
