package verifiertest_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

func issuerTestContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// fetchKeys fetches and parses the issuer's JWKS over HTTP.
func fetchKeys(tb testing.TB, iss *verifiertest.Issuer) []keyset.Key {
	tb.Helper()
	req, err := http.NewRequestWithContext(issuerTestContext(tb), http.MethodGet, iss.JWKSURL(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET jwks: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		tb.Fatalf("GET jwks: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	keys, err := keyset.ParseJWKS(body)
	if err != nil {
		tb.Fatalf("ParseJWKS: %v", err)
	}
	return keys
}

// verify parses token with golang-jwt against keys, enforcing the issuer's
// algorithm, iss, aud and exp.
func verify(tb testing.TB, iss *verifiertest.Issuer, keys []keyset.Key, token string) (jwt.MapClaims, error) {
	tb.Helper()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys {
			if k.ID == kid {
				if !k.AllowsAlgorithm(t.Method.Alg()) {
					return nil, fmt.Errorf("key %q does not allow %s", kid, t.Method.Alg())
				}
				return k.Public, nil
			}
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	},
		jwt.WithValidMethods([]string{iss.Algorithm()}),
		jwt.WithIssuer(iss.Issuer()),
		jwt.WithAudience(iss.Audience()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	return claims, err
}

// decodeSegment decodes one base64url JSON segment of a compact JWS,
// keeping numbers as written.
func decodeSegment(tb testing.TB, token string, i int) map[string]any {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatalf("segment %d: %v", i, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatalf("segment %d: %v", i, err)
	}
	return m
}

func TestIssuerTokenVerifies(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			iss := verifiertest.NewIssuer(t, verifiertest.WithAlgorithm(alg))
			if iss.Algorithm() != alg {
				t.Fatalf("Algorithm() = %q", iss.Algorithm())
			}
			token := iss.Token(t, verifiertest.TokenOptions{})

			keys := fetchKeys(t, iss)
			if len(keys) != 1 || keys[0].ID != iss.KeyID() {
				t.Fatalf("jwks kids = %v, want [%s]", keys, iss.KeyID())
			}
			claims, err := verify(t, iss, keys, token)
			if err != nil {
				t.Fatalf("token does not verify: %v", err)
			}
			if claims["sub"] != verifiertest.DefaultSubject || claims["jti"] == "" || claims["sid"] == "" {
				t.Fatalf("claims = %v", claims)
			}
			if _, ok := claims["nbf"]; ok {
				t.Fatal("token has nbf")
			}

			header := decodeSegment(t, token, 0)
			if header["typ"] != "at+jwt" || header["alg"] != alg || header["kid"] != iss.KeyID() {
				t.Fatalf("header = %v", header)
			}
			raw := decodeSegment(t, token, 1)
			for _, name := range []string{"iat", "exp"} {
				n, ok := raw[name].(json.Number)
				if !ok || !strings.Contains(string(n), ".") {
					t.Fatalf("%s = %v, want a number with a fractional part", name, raw[name])
				}
			}

			// The same key through keyset.Remote, as the verifier reads it.
			r, err := keyset.NewRemote(keyset.RemoteConfig{URL: iss.JWKSURL()})
			if err != nil {
				t.Fatal(err)
			}
			k, err := r.Key(issuerTestContext(t), iss.KeyID())
			if err != nil || !k.AllowsAlgorithm(alg) {
				t.Fatalf("Remote.Key = %+v, %v", k, err)
			}
			if iss.JWKSRequests() != 2 {
				t.Fatalf("JWKSRequests = %d, want 2", iss.JWKSRequests())
			}
		})
	}
}

func TestIssuerTokenOptions(t *testing.T) {
	at := time.Date(2030, 5, 6, 7, 8, 9, 123456789, time.UTC)
	iss := verifiertest.NewIssuer(t,
		verifiertest.WithIssuer("https://other.test"),
		verifiertest.WithAudience("svc"),
		verifiertest.WithTTL(time.Hour),
		verifiertest.WithNow(func() time.Time { return at }),
	)

	tests := []struct {
		name       string
		opts       verifiertest.TokenOptions
		wantHeader map[string]any
		wantClaims map[string]any
		absent     []string
	}{
		{
			name: "defaults from issuer options",
			wantClaims: map[string]any{
				"iss": "https://other.test", "aud": "svc", "sub": "alice",
				"iat": json.Number("1904281689.123456"), "exp": json.Number("1904285289.123456"),
			},
		},
		{
			name: "explicit fields",
			opts: verifiertest.TokenOptions{
				Subject: "bob", SessionID: "s1", JTI: "j1",
				IssuedAt: time.Unix(1763812854, 500_000_000), TTL: time.Minute,
			},
			wantClaims: map[string]any{
				"sub": "bob", "sid": "s1", "jti": "j1",
				"iat": json.Number("1763812854.500000"), "exp": json.Number("1763812914.500000"),
			},
		},
		{
			name:       "extra claims override and remove",
			opts:       verifiertest.TokenOptions{Extra: map[string]any{"scope": "read", "aud": []string{"a", "b"}, "sid": nil}},
			wantClaims: map[string]any{"scope": "read", "aud": []any{"a", "b"}},
			absent:     []string{"sid"},
		},
		{
			name:       "header override and remove",
			opts:       verifiertest.TokenOptions{Header: map[string]any{"alg": "none", "kid": nil, "jku": "https://evil.test/jwks"}},
			wantHeader: map[string]any{"alg": "none", "typ": "at+jwt", "jku": "https://evil.test/jwks"},
			absent:     []string{"kid"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := iss.Token(t, tt.opts)
			header, claims := decodeSegment(t, token, 0), decodeSegment(t, token, 1)
			for k, want := range tt.wantHeader {
				if fmt.Sprint(header[k]) != fmt.Sprint(want) {
					t.Errorf("header %s = %v, want %v", k, header[k], want)
				}
			}
			for k, want := range tt.wantClaims {
				if fmt.Sprint(claims[k]) != fmt.Sprint(want) {
					t.Errorf("claim %s = %v, want %v", k, claims[k], want)
				}
			}
			for _, k := range tt.absent {
				if _, ok := header[k]; ok {
					t.Errorf("header has %s", k)
				}
				if _, ok := claims[k]; ok {
					t.Errorf("claims have %s", k)
				}
			}
		})
	}

	// Random defaults differ between tokens.
	a := decodeSegment(t, iss.Token(t, verifiertest.TokenOptions{}), 1)
	b := decodeSegment(t, iss.Token(t, verifiertest.TokenOptions{}), 1)
	if a["jti"] == b["jti"] || a["sid"] == b["sid"] {
		t.Fatalf("jti/sid not random: %v %v", a, b)
	}
}

func TestIssuerExpiredToken(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	token := iss.Token(t, verifiertest.TokenOptions{TTL: -time.Minute})
	if _, err := verify(t, iss, fetchKeys(t, iss), token); !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("err = %v, want jwt.ErrTokenExpired", err)
	}
}

func TestIssuerRotateKey(t *testing.T) {
	iss := verifiertest.NewIssuer(t, verifiertest.WithAlgorithm("ES256"))
	oldKID, oldPub := iss.KeyID(), iss.PublicKey()
	oldToken := iss.Token(t, verifiertest.TokenOptions{})

	newKID := iss.RotateKey(t)
	if newKID == oldKID || iss.KeyID() != newKID {
		t.Fatalf("RotateKey = %q, KeyID = %q, old %q", newKID, iss.KeyID(), oldKID)
	}
	if iss.PublicKey().(interface{ Equal(crypto.PublicKey) bool }).Equal(oldPub) {
		t.Fatal("public key unchanged after rotation")
	}
	newToken := iss.Token(t, verifiertest.TokenOptions{})
	if kid := decodeSegment(t, newToken, 0)["kid"]; kid != newKID {
		t.Fatalf("new token kid = %v, want %s", kid, newKID)
	}

	keys := fetchKeys(t, iss)
	if len(keys) != 2 || keys[0].ID != oldKID || keys[1].ID != newKID {
		t.Fatalf("jwks after rotation = %v", keys)
	}
	for name, token := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := verify(t, iss, keys, token); err != nil {
			t.Fatalf("%s token: %v", name, err)
		}
	}
}

func TestIssuerSignRaw(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	token := iss.SignRaw(t, map[string]any{"alg": "EdDSA"}, map[string]any{"sub": "mallory"})
	header, claims := decodeSegment(t, token, 0), decodeSegment(t, token, 1)
	if len(header) != 1 || len(claims) != 1 || claims["sub"] != "mallory" {
		t.Fatalf("SignRaw added fields: header %v, claims %v", header, claims)
	}
	// The signature is genuine: it verifies with the issuer's key.
	parts := strings.Split(token, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := jwt.SigningMethodEdDSA.Verify(parts[0]+"."+parts[1], sig, iss.PublicKey()); err != nil {
		t.Fatalf("signature: %v", err)
	}
}

func TestNumericDate(t *testing.T) {
	tests := []struct {
		name string
		t    time.Time
		want string
	}{
		{name: "whole second", t: time.Unix(1763812854, 0), want: "1763812854.000000"},
		{name: "microseconds", t: time.Unix(1763812854, 123456000), want: "1763812854.123456"},
		{name: "nanoseconds truncated", t: time.Unix(1763812854, 999999999), want: "1763812854.999999"},
		{name: "before epoch", t: time.Unix(-2, 250000000), want: "-2.250000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verifiertest.NumericDate(tt.t); string(got) != tt.want {
				t.Fatalf("NumericDate = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestIssuerConcurrentUse mints tokens while rotating keys; run with -race.
func TestIssuerConcurrentUse(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	var (
		wg     sync.WaitGroup
		tokens = make(chan string, 8*25)
	)
	for range 8 {
		wg.Go(func() {
			for range 25 {
				tokens <- iss.Token(t, verifiertest.TokenOptions{})
			}
		})
	}
	for range 3 {
		iss.RotateKey(t)
		_ = iss.JWKS()
	}
	wg.Wait()
	close(tokens)
	keys := fetchKeys(t, iss)
	for token := range tokens {
		if _, err := verify(t, iss, keys, token); err != nil {
			t.Fatalf("token: %v", err)
		}
	}
}
