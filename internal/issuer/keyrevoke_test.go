package issuer_test

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/internal/runverifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// streamVerifier returns a running, ready verifier that trusts the
// issuer's JWKS and follows the same revocation stream, as a service would.
func (e *env) streamVerifier(tb testing.TB) *verifier.Verifier {
	tb.Helper()
	return runverifier.Ready(tb, verifier.Config{
		Issuer: testIssuer, Audiences: []string{testAudience}, Algorithms: []string{"EdDSA", "ES256", "RS256"},
		Keys: e.jwks(tb), JetStream: e.js, Logger: slog.New(slog.DiscardHandler),
	})
}

func kidOf(tb testing.TB, tok string) string {
	tb.Helper()
	return strings.Trim(string(segment(tb, tok, 0)["kid"]), `"`)
}

// TestSigningKeyRevoked: the issuer follows the revocation of its signing
// key. A key revocation recorded in Redis (as the revoker records each
// before publishing it) moves it to the next configured key within about a
// second, and one recorded before it started before it is ready; the next
// key's tokens verify. Once every key is revoked it mints nothing: login,
// sessions and refresh answer 503 temporarily_unavailable and /readyz says
// why.
func TestSigningKeyRevoked(t *testing.T) {
	t.Run("next key after a revocation", func(t *testing.T) {
		k1, k2 := testKey(t, "EdDSA"), testKey(t, "ES256")
		e := newEnv(t, func(c *issuer.Config) { c.Keys = []issuer.SigningKey{k1, k2} })
		v := e.streamVerifier(t)
		ctx := testContext(t)
		old := e.login(t, "alice")
		if kidOf(t, old.AccessToken) != k1.ID {
			t.Fatal("not signed by the configured signing key")
		}
		e.revoke(t, events.NewKey("t.kid.1", k1.ID, time.Now()))
		eventually.True(t, 5*time.Second, "a token signed by the next key", func() bool {
			return kidOf(t, e.login(t, "alice").AccessToken) == k2.ID
		})
		fresh := e.login(t, "alice")
		if _, err := v.Verify(ctx, fresh.AccessToken); err != nil {
			t.Fatalf("token of the next key: %v", err)
		}
		refreshed := refreshOK(t, e, old.RefreshToken)
		if _, err := v.Verify(ctx, refreshed); err != nil || kidOf(t, refreshed) != k2.ID {
			t.Fatalf("refreshed token: kid %s, %v", kidOf(t, refreshed), err)
		}
		eventually.True(t, 10*time.Second, "the old token refused", func() bool {
			_, err := v.Verify(ctx, old.AccessToken)
			return errors.Is(err, verifier.ErrKeyRevoked)
		})
		if r := e.do(t, http.MethodGet, "/readyz", "", "", nil); r.status != http.StatusOK {
			t.Fatalf("/readyz: %d %s", r.status, r.body)
		}
	})

	t.Run("next key when revoked before the start", func(t *testing.T) {
		k1, k2 := testKey(t, "EdDSA"), testKey(t, "EdDSA")
		e := newEnv(t, func(c *issuer.Config) {
			c.Keys = []issuer.SigningKey{k1, k2}
			if _, err := c.Store.Record(testContext(t), verifiertest.Encoded(t, events.NewKey("t.kid.2", k1.ID, time.Now())), time.Minute, nil); err != nil {
				t.Fatal(err)
			}
		})
		// newEnv waited for /readyz: ready means the revoked key is passed.
		if kid := kidOf(t, e.login(t, "alice").AccessToken); kid != k2.ID {
			t.Fatalf("signed by %s after its revocation was recorded", kid)
		}
	})

	t.Run("every key revoked", func(t *testing.T) {
		e := newEnv(t, nil)
		tr := e.login(t, "alice")
		e.revoke(t, events.NewKey("t.kid.3", e.cfg.Keys[0].ID, time.Now()))
		eventually.True(t, 10*time.Second, "/readyz 503", func() bool {
			return e.do(t, http.MethodGet, "/readyz", "", "", nil).status == http.StatusServiceUnavailable
		})
		if r := e.do(t, http.MethodGet, "/readyz", "", "", nil); !strings.Contains(string(r.body), "every signing key of this issuer is revoked") {
			t.Fatalf("/readyz: %s", r.body)
		}
		before := e.dbsize(t)
		for _, tt := range []struct {
			name string
			call func() reply
		}{
			{name: "login", call: func() reply {
				return e.postJSON(t, "/v1/login", map[string]string{"username": "alice", "password": testPassword}, nil)
			}},
			{name: "sessions", call: func() reply {
				return e.postJSON(t, "/v1/sessions", map[string]any{"sub": "user-42"}, bearer(testCredential))
			}},
			{name: "refresh", call: func() reply { return e.refresh(t, tr.RefreshToken) }},
		} {
			t.Run(tt.name, func(t *testing.T) {
				r := tt.call()
				if r.status != http.StatusServiceUnavailable || r.errorCode(t) != "temporarily_unavailable" ||
					!strings.Contains(string(r.body), "every signing key of this issuer is revoked") {
					t.Fatalf("got %d %s", r.status, r.body)
				}
			})
		}
		if e.dbsize(t) != before {
			t.Fatal("state changed")
		}
		if s := e.session(t, tr.SessionID); s.Generation != 1 {
			t.Fatalf("refresh token spent: generation %d", s.Generation)
		}
	})
}
