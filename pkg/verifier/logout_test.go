package verifier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

const providerClient = "client-at-idp"

// logoutChecker returns a LogoutChecker for idp's logout tokens to
// providerClient, with its JWKS running until the test ends (a checker does
// not run its keys: whoever owns the key source does).
func logoutChecker(t *testing.T, idp *verifiertest.Issuer, mod func(*LogoutConfig)) *LogoutChecker {
	t.Helper()
	keys := jwks(t, idp.JWKSURL())
	cfg := LogoutConfig{Issuer: idp.Issuer(), ClientID: providerClient, Keys: keys, Algorithms: []string{idp.Algorithm()}}
	if mod != nil {
		mod(&cfg)
	}
	k, err := NewLogoutChecker(cfg)
	if err != nil {
		t.Fatalf("NewLogoutChecker: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- keys.(*JWKS).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("JWKS.Run: %v", err)
		}
	})
	return k
}

// TestLogoutToken: a logout token as Hydra sends one (sid, no sub, no exp,
// typ JWT) and one naming only a subject are accepted, with what they log
// out; every token §2.6 of OpenID Connect Back-Channel Logout 1.0 says to
// refuse is refused with ErrInvalidToken and a reason that says why.
func TestLogoutToken(t *testing.T) {
	idp := verifiertest.NewIssuer(t, verifiertest.WithIssuer("https://idp.example.test/"),
		verifiertest.WithAlgorithm("RS256"))
	other := verifiertest.NewIssuer(t, verifiertest.WithIssuer("https://idp.example.test/"),
		verifiertest.WithAlgorithm("RS256"))
	k := logoutChecker(t, idp, nil)
	ctx := context.Background()
	now := time.Now()

	got, err := k.Check(ctx, idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: providerClient, SessionID: "s-1", JTI: "j-1"}))
	if err != nil || got.SessionID != "s-1" || got.Subject != "" || got.ID != "j-1" || got.Issuer != idp.Issuer() ||
		!got.ExpiresAt.IsZero() || got.IssuedAt.Sub(now).Abs() > time.Second {
		t.Fatalf("Hydra-shaped logout token: %+v, %v", got, err)
	}
	got, err = k.Check(ctx, idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: providerClient, Subject: "alice",
		Header: map[string]any{"typ": "logout+jwt"}, Extra: map[string]any{"exp": verifiertest.NumericDate(now.Add(time.Minute)),
			"aud": []string{"someone-else", providerClient}}}))
	if err != nil || got.Subject != "alice" || got.SessionID != "" || got.ExpiresAt.IsZero() {
		t.Fatalf("subject logout token with exp, typ logout+jwt and two audiences: %+v, %v", got, err)
	}
	for _, typ := range []any{"application/logout+jwt", "jwt", nil} {
		if _, err := k.Check(ctx, idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: providerClient, SessionID: "s",
			Header: map[string]any{"typ": typ}})); err != nil {
			t.Errorf("typ %v: %v", typ, err)
		}
	}

	lo := func(o verifiertest.LogoutOptions) string {
		if o.ClientID == "" {
			o.ClientID = providerClient
		}
		if o.SessionID == "" && o.Subject == "" {
			o.SessionID = "s-1"
		}
		return idp.LogoutToken(t, o)
	}
	bcl := map[string]any{BackchannelLogoutEvent: map[string]any{}}
	refusedTokens := []struct {
		name string
		raw  string
		want error
		text string
	}{
		{"empty", "", ErrMalformed, "empty"},
		{"two segments", "a.b", ErrMalformed, "three segments"},
		{"oversized", strings.Repeat("a", DefaultMaxTokenSize+1), ErrMalformed, "size limit"},
		{"signed by another key", other.LogoutToken(t, verifiertest.LogoutOptions{ClientID: providerClient, SessionID: "s"}), ErrUnknownKey, ""},
		{"signature of another token", lo(verifiertest.LogoutOptions{})[:strings.LastIndexByte(lo(verifiertest.LogoutOptions{}), '.')] + "." +
			lo(verifiertest.LogoutOptions{JTI: "other"})[strings.LastIndexByte(lo(verifiertest.LogoutOptions{JTI: "other"}), '.')+1:], ErrSignature, ""},
		{"alg none", lo(verifiertest.LogoutOptions{Header: map[string]any{"alg": "none"}}), ErrAlgorithm, ""},
		{"HS256", lo(verifiertest.LogoutOptions{Header: map[string]any{"alg": "HS256"}}), ErrAlgorithm, ""},
		{"jku in the header", lo(verifiertest.LogoutOptions{Header: map[string]any{"jku": "https://evil.example.test/jwks"}}), ErrHeader, "jku"},
		{"no kid", lo(verifiertest.LogoutOptions{Header: map[string]any{"kid": nil}}), ErrHeader, "kid"},
		{"typ of an access token", lo(verifiertest.LogoutOptions{Header: map[string]any{"typ": "at+jwt"}}), ErrHeader, "logout+jwt"},
		{"typ of a security event token", lo(verifiertest.LogoutOptions{Header: map[string]any{"typ": "secevent+jwt"}}), ErrHeader, "logout+jwt"},
		{"wrong iss", lo(verifiertest.LogoutOptions{Extra: map[string]any{"iss": "https://idp.example.test"}}), ErrClaims, "wrong iss"},
		{"no iss", lo(verifiertest.LogoutOptions{Extra: map[string]any{"iss": nil}}), ErrClaims, "iss"},
		{"addressed to another client", lo(verifiertest.LogoutOptions{ClientID: "another-client"}), ErrClaims, "wrong aud"},
		{"no aud", lo(verifiertest.LogoutOptions{Extra: map[string]any{"aud": nil}}), ErrClaims, ""},
		{"no iat", lo(verifiertest.LogoutOptions{Extra: map[string]any{"iat": nil}}), ErrClaims, "iat missing"},
		{"iat too old", lo(verifiertest.LogoutOptions{IssuedAt: now.Add(-DefaultLogoutMaxAge - time.Minute)}), ErrExpired, "iat older"},
		{"iat in the future", lo(verifiertest.LogoutOptions{IssuedAt: now.Add(time.Minute)}), ErrNotYetValid, ""},
		{"expired", lo(verifiertest.LogoutOptions{Extra: map[string]any{"exp": verifiertest.NumericDate(now.Add(-time.Minute))}}), ErrExpired, ""},
		{"iat not a number", lo(verifiertest.LogoutOptions{Extra: map[string]any{"iat": "yesterday"}}), ErrMalformed, "iat"},
		{"no events", lo(verifiertest.LogoutOptions{Extra: map[string]any{"events": nil}}), ErrClaims, "events missing"},
		{"events not an object", lo(verifiertest.LogoutOptions{Extra: map[string]any{"events": []string{BackchannelLogoutEvent}}}), ErrClaims, "events is not"},
		{"events without the logout member", lo(verifiertest.LogoutOptions{Extra: map[string]any{"events": map[string]any{
			"https://schemas.openid.net/secevent/caep/event-type/session-revoked": map[string]any{}}}}), ErrClaims, "no back-channel logout member"},
		{"the logout member not an object", lo(verifiertest.LogoutOptions{Extra: map[string]any{"events": map[string]any{BackchannelLogoutEvent: true}}}), ErrClaims, "not a json object"},
		{"neither sub nor sid", idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: providerClient}), ErrClaims, "neither sub nor sid"},
		{"sid not a string", lo(verifiertest.LogoutOptions{Extra: map[string]any{"sid": 42}}), ErrMalformed, "sid"},
		{"sub too long", lo(verifiertest.LogoutOptions{Subject: strings.Repeat("x", 257)}), ErrClaims, "sub longer"},
		{"sid with a control character", lo(verifiertest.LogoutOptions{SessionID: "s\n1"}), ErrClaims, "sid longer"},
		{"no jti", lo(verifiertest.LogoutOptions{Extra: map[string]any{"jti": nil}}), ErrClaims, "jti missing"},
		{"a nonce (an ID token)", lo(verifiertest.LogoutOptions{Extra: map[string]any{"nonce": "n-1"}}), ErrClaims, "nonce"},
		{"an access token of the provider", idp.Token(t, verifiertest.TokenOptions{Header: map[string]any{"typ": "JWT"},
			Extra: map[string]any{"aud": providerClient}}), ErrClaims, "events missing"},
		{"a claim twice", idp.SignRaw(t, map[string]any{"alg": "RS256", "kid": idp.KeyID()},
			map[string]any{"iss": idp.Issuer(), "aud": providerClient, "iat": now.Unix(), "jti": "j", "sid": "s", "events": bcl,
				"Sid": "other"}), errAcceptedRow, ""},
	}
	for _, tt := range refusedTokens {
		lt, err := k.Check(ctx, tt.raw)
		if tt.want == errAcceptedRow {
			// "Sid" is not "sid": names are exact, so this one is valid.
			if err != nil || lt.SessionID != "s" {
				t.Errorf("%s: %+v, %v; want accepted with sid s", tt.name, lt, err)
			}
			continue
		}
		if lt != nil || !errors.Is(err, ErrInvalidToken) || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %+v, %v; want %v (%q)", tt.name, lt, err, tt.want, tt.text)
		}
	}
}

// errAcceptedRow marks a table row that must be accepted.
var errAcceptedRow = errors.New("accepted")

// TestLogoutTokenWindow: the age window is MaxAge plus leeway on the
// checker's clock, and ReplayWindow covers all of it.
func TestLogoutTokenWindow(t *testing.T) {
	idp := verifiertest.NewIssuer(t, verifiertest.WithAlgorithm("ES256"))
	now := time.Now()
	k := logoutChecker(t, idp, func(c *LogoutConfig) {
		c.MaxAge, c.Leeway = time.Minute, time.Second
		c.Now = func() time.Time { return now }
	})
	ctx := context.Background()
	in := idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: providerClient, SessionID: "s", IssuedAt: now.Add(-time.Minute - 900*time.Millisecond)})
	if _, err := k.Check(ctx, in); err != nil {
		t.Errorf("iat just inside MaxAge + leeway: %v", err)
	}
	out := idp.LogoutToken(t, verifiertest.LogoutOptions{ClientID: providerClient, SessionID: "s", IssuedAt: now.Add(-time.Minute - 1100*time.Millisecond)})
	if _, err := k.Check(ctx, out); !errors.Is(err, ErrExpired) {
		t.Errorf("iat just outside MaxAge + leeway: %v, want ErrExpired", err)
	}
	if w := k.ReplayWindow(); w != time.Minute+2*time.Second {
		t.Errorf("ReplayWindow = %s, want 1m2s", w)
	}
}

// TestLogoutConfig: every misconfiguration is reported at once, in the
// user's words.
func TestLogoutConfig(t *testing.T) {
	_, err := NewLogoutChecker(LogoutConfig{Algorithms: []string{"HS256"}, MaxAge: 48 * time.Hour, Leeway: -time.Second})
	if err == nil {
		t.Fatal("NewLogoutChecker accepted an empty config")
	}
	for _, want := range []string{"Keys is required", "ClientID is required", "Issuer is required", `algorithm "HS256" not supported`,
		"MaxAge 48h0m0s not in", "Leeway -1s not in"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}
