package verifier

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

const (
	receiver       = "https://receiver.example.test/"
	sessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
)

// TestSET: a SET as an SSF transmitter pushes one is accepted with its one
// event and its sub_id as sent; every SET RFC 8417 and SSF 1.0 rule out is
// refused, with a reason that says why.
func TestSET(t *testing.T) {
	idp := verifiertest.NewIssuer(t, verifiertest.WithIssuer("https://idp.example.test/"), verifiertest.WithAlgorithm("RS256"))
	other := verifiertest.NewIssuer(t, verifiertest.WithIssuer("https://idp.example.test/"), verifiertest.WithAlgorithm("RS256"))
	keys := jwks(t, idp.JWKSURL())
	k, err := NewSETChecker(SETConfig{Issuer: idp.Issuer(), Audience: receiver, Keys: keys, Algorithms: []string{"RS256"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sub := map[string]any{"format": "iss_sub", "iss": idp.Issuer(), "sub": "alice"}
	set, err := k.Check(ctx, idp.SET(t, verifiertest.SETOptions{Audience: receiver, EventType: sessionRevoked, JTI: "set-1",
		SubjectID: sub, Event: map[string]any{"event_timestamp": 1700000000}}))
	if err != nil || set.EventType != sessionRevoked || set.ID != "set-1" || set.Issuer != idp.Issuer() ||
		!strings.Contains(string(set.SubjectID), `"sub":"alice"`) || !strings.Contains(string(set.Event), "event_timestamp") {
		t.Fatalf("SET: %+v, %v", set, err)
	}

	s := func(o verifiertest.SETOptions) string {
		if o.Audience == "" {
			o.Audience = receiver
		}
		if o.EventType == "" {
			o.EventType = sessionRevoked
		}
		return idp.SET(t, o)
	}
	two := map[string]any{sessionRevoked: map[string]any{}, "https://schemas.openid.net/secevent/risc/event-type/account-disabled": map[string]any{}}
	for _, tt := range []struct {
		name string
		raw  string
		want error
		text string
	}{
		{"signed by another key", other.SET(t, verifiertest.SETOptions{Audience: receiver, EventType: sessionRevoked}), ErrUnknownKey, ""},
		{"no typ", s(verifiertest.SETOptions{Header: map[string]any{"typ": nil}}), ErrHeader, "secevent+jwt"},
		{"typ JWT", s(verifiertest.SETOptions{Header: map[string]any{"typ": "JWT"}}), ErrHeader, "secevent+jwt"},
		{"a logout token's typ", s(verifiertest.SETOptions{Header: map[string]any{"typ": "logout+jwt"}}), ErrHeader, "secevent+jwt"},
		{"alg none", s(verifiertest.SETOptions{Header: map[string]any{"alg": "none"}}), ErrAlgorithm, ""},
		{"wrong iss", s(verifiertest.SETOptions{Extra: map[string]any{"iss": "https://evil.example.test/"}}), ErrClaims, "wrong iss"},
		{"to another receiver", s(verifiertest.SETOptions{Audience: "https://other.example.test/"}), ErrClaims, "wrong aud"},
		{"no iat", s(verifiertest.SETOptions{Extra: map[string]any{"iat": nil}}), ErrClaims, "iat missing"},
		{"iat too old", s(verifiertest.SETOptions{IssuedAt: time.Now().Add(-DefaultSETMaxAge - time.Hour)}), ErrExpired, "iat older"},
		{"iat in the future", s(verifiertest.SETOptions{IssuedAt: time.Now().Add(time.Hour)}), ErrNotYetValid, ""},
		{"expired", s(verifiertest.SETOptions{Extra: map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}}), ErrExpired, ""},
		{"no jti", s(verifiertest.SETOptions{Extra: map[string]any{"jti": nil}}), ErrClaims, "jti missing"},
		{"a sub claim", s(verifiertest.SETOptions{Extra: map[string]any{"sub": "alice"}}), ErrClaims, "must not carry sub"},
		{"no events", s(verifiertest.SETOptions{Extra: map[string]any{"events": nil}}), ErrClaims, "events missing"},
		{"two events", s(verifiertest.SETOptions{Extra: map[string]any{"events": two}}), ErrClaims, "exactly one event"},
		{"no event", s(verifiertest.SETOptions{Extra: map[string]any{"events": map[string]any{}}}), ErrClaims, "exactly one event"},
		{"the event not an object", s(verifiertest.SETOptions{Extra: map[string]any{"events": map[string]any{sessionRevoked: "x"}}}), ErrClaims, "not a json object"},
		{"sub_id not an object", s(verifiertest.SETOptions{Extra: map[string]any{"sub_id": "alice"}}), ErrClaims, "sub_id"},
		{"an access token", idp.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"aud": receiver}}), ErrHeader, "secevent+jwt"},
	} {
		got, err := k.Check(ctx, tt.raw)
		if got != nil || !errors.Is(err, ErrInvalidToken) || !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %+v, %v; want %v (%q)", tt.name, got, err, tt.want, tt.text)
		}
	}
}

// TestSETConfig: misconfigurations are reported at once.
func TestSETConfig(t *testing.T) {
	_, err := NewSETChecker(SETConfig{Algorithms: []string{"HS256"}, MaxAge: 48 * time.Hour})
	for _, want := range []string{"Keys is required", "Audience is required", "Issuer is required", `"HS256" not supported`, "MaxAge 48h0m0s"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}
