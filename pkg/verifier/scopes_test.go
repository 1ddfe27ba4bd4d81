package verifier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestEpochScopes: a verifier configured with epoch scope claims refuses,
// once a scope revocation arrives on the stream, the tokens that carry the
// claim's value and were issued up to its epoch, with reason
// revoked_scope; an issuer epoch refuses every token of that issuer and
// none of another's.
func TestEpochScopes(t *testing.T) {
	e := newEnv(t)
	idp := verifiertest.NewIssuer(t, verifiertest.WithIssuer("https://idp.example.test/"), verifiertest.WithAlgorithm(ES256))
	v := e.verifier(t, func(c *Config) {
		c.EpochScopes = []string{"client_id", "tenant"}
		c.Providers = []Provider{{Name: "idp", Issuer: idp.Issuer(), Keys: jwks(t, idp.JWKSURL()),
			Audiences: []string{idp.Audience()}, Algorithms: []string{ES256}}}
	})
	ctx := context.Background()
	before := time.Now().Add(-time.Minute)
	tok := func(iss *verifiertest.Issuer, extra map[string]any) string {
		return iss.Token(t, verifiertest.TokenOptions{IssuedAt: before, Extra: extra})
	}
	app1 := tok(e.iss, map[string]any{"client_id": "app-1"})
	app2 := tok(e.iss, map[string]any{"client_id": "app-2"})
	numeric := tok(e.iss, map[string]any{"tenant": 7})
	tenantT := tok(e.iss, map[string]any{"tenant": "t-7"})
	theirs := tok(idp, nil)
	later := e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"client_id": "app-1"}})
	for _, raw := range []string{app1, app2, numeric, tenantT, theirs} {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatalf("before any revocation: %v", err)
		}
	}

	now := time.Now()
	e.srv.Revoke(t, events.NewScope(eventID("scope"), "client_id", "app-1", now.Add(-30*time.Second), now))
	e.srv.Revoke(t, events.NewIssuerEpoch(eventID("iss"), idp.Issuer(), now, now))
	eventually.True(t, 10*time.Second, "the client's token refused", func() bool {
		_, err := v.Verify(ctx, app1)
		return errors.Is(err, ErrScopeRevoked) && Reason(err) == "revoked_scope"
	})
	eventually.True(t, 10*time.Second, "the provider's token refused", func() bool {
		_, err := v.Verify(ctx, theirs)
		return errors.Is(err, ErrScopeRevoked)
	})
	for name, raw := range map[string]string{"another client": app2, "a numeric tenant": numeric, "another tenant": tenantT,
		"the client's token issued after the epoch": later} {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Errorf("%s: %v, want accepted", name, err)
		}
	}
	// A scope value no revocation could name refuses the token.
	if _, err := v.Verify(ctx, tok(e.iss, map[string]any{"tenant": strings.Repeat("x", 300)})); !errors.Is(err, ErrClaims) {
		t.Errorf("an unrevocable tenant: %v, want ErrClaims", err)
	}
}

// TestEpochScopesConfig: the scope claims are checked at New.
func TestEpochScopesConfig(t *testing.T) {
	keys := static(t, Key{ID: "k", Algorithm: EdDSA, Public: verifiertest.NewIssuer(t).PublicKey()})
	for _, tt := range []struct {
		scopes []string
		want   string
	}{
		{[]string{"iss"}, "a scope of every token already"},
		{[]string{"tenant", "tenant"}, "listed twice"},
		{[]string{"sub"}, "use a subject revocation"},
		{[]string{""}, "claim"},
		{[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}, "at most 8"},
	} {
		_, err := NewChecker(keys, CheckerConfig{Issuer: "i", Audiences: []string{"a"}, Algorithms: []string{EdDSA}, EpochScopes: tt.scopes})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("EpochScopes %q: %v, want %q", tt.scopes, err, tt.want)
		}
	}
}
