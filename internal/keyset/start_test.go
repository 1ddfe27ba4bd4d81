package keyset

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
)

// TestRemoteRunBeforeTheIssuer: a verifier that starts before its JWKS
// answers (compose starts the revoker before the issuer) has keys within
// about a second of the set becoming reachable, and while it is down it
// retries with a backoff capped at a second, not in a tight loop.
func TestRemoteRunBeforeTheIssuer(t *testing.T) {
	srv := newJWKSServer(t)
	srv.set(http.StatusServiceUnavailable, "text/plain", []byte("starting"))
	r, err := NewRemote(RemoteConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// Down long enough for the backoff to reach its cap (0, 0.1, 0.3, 0.7,
	// 1.5, 2.5 s).
	start := time.Now()
	eventually.True(t, 8*time.Second, "6 fetches while the JWKS is down", func() bool { return srv.requests.Load() >= 6 })
	downFor, whileDown := time.Since(start), srv.requests.Load()
	if limit := 5 + int64(downFor/time.Second); whileDown > limit {
		t.Fatalf("%d fetches in %v while the JWKS was down, want at most %d", whileDown, downFor, limit)
	}
	if !r.Status().LastFetch.IsZero() {
		t.Fatal("keys while the JWKS was down")
	}

	srv.publish(t, Key{ID: "k1", Public: newEd25519Key(t)})
	up := time.Now()
	eventually.True(t, 15*time.Second, "keys after the JWKS came up", func() bool { return !r.Status().LastFetch.IsZero() })
	if d := time.Since(up); d > 1500*time.Millisecond {
		t.Fatalf("keys %v after the JWKS came up, want within 1.5 s", d)
	}
	t.Logf("down %v (%d fetches), keys %v after the JWKS came up", downFor, whileDown, time.Since(up))
}
