package issuer_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// TestScopeLogoutEndsSessions: a logout of an epoch scope a session's
// claims carry (a tenant), or of the whole issuer, ends the sessions that
// began before it: their refresh tokens get invalid_grant, so the scope's
// users cannot mint their way past it. Sessions of other values keep
// refreshing, and a session begun after the logout is minted after its
// epoch and refreshes.
func TestScopeLogoutEndsSessions(t *testing.T) {
	e := newEnv(t, func(c *issuer.Config) { c.EpochScopes = []string{"tenant"} })
	ctx := testContext(t)
	start := func(sub string, tenant any) issuer.TokenResponse {
		t.Helper()
		r := e.postJSON(t, "/v1/sessions", map[string]any{"sub": sub, "claims": map[string]any{"tenant": tenant}}, bearer(testCredential))
		if r.status != http.StatusCreated {
			t.Fatalf("session of %s: %d %s", sub, r.status, r.body)
		}
		return r.token(t)
	}
	refreshes := func(what string, tr issuer.TokenResponse, want int) issuer.TokenResponse {
		t.Helper()
		r := e.refresh(t, tr.RefreshToken)
		if r.status != want {
			t.Fatalf("refresh of %s: %d %s, want %d", what, r.status, r.body, want)
		}
		if want != http.StatusOK {
			if code := r.errorCode(t); code != "invalid_grant" {
				t.Fatalf("refresh of %s: error %q, want invalid_grant", what, code)
			}
			return issuer.TokenResponse{}
		}
		return r.token(t)
	}
	record := func(ev events.Event) {
		t.Helper()
		x, err := events.NewEncoded(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.Record(ctx, x, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	acme, globex, numeric := start("u-1", "acme"), start("u-2", "globex"), start("u-3", 7)

	now := time.Now()
	record(events.NewScope(revoker.NewEventID(), "tenant", "acme", now, now))
	refreshes("acme's session", acme, http.StatusBadRequest)
	globex = refreshes("globex's session", globex, http.StatusOK)
	numeric = refreshes("a session whose tenant is no string", numeric, http.StatusOK)
	fresh := start("u-1", "acme")
	c, err := e.inspector(t).Check(ctx, fresh.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IssuedAt.After(now) {
		t.Errorf("acme's new session minted at %v, not after the logout at %v", c.IssuedAt, now)
	}
	fresh = refreshes("acme's new session", fresh, http.StatusOK)

	// The whole issuer: every session so far.
	now = time.Now()
	record(events.NewIssuerEpoch(revoker.NewEventID(), testIssuer, now, now))
	for what, tr := range map[string]issuer.TokenResponse{"globex": globex, "the numeric tenant": numeric, "acme's new session": fresh} {
		refreshes(what+" after the issuer logout", tr, http.StatusBadRequest)
	}
	refreshes("a session begun after the issuer logout", start("u-2", "globex"), http.StatusOK)
}
