package verifier

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hostileTest is one row of TestHostileTokens: a token built from the
// issuer's key and the expected reason.
type hostileTest struct {
	name  string
	token func(iss *verifiertest.Issuer, header, claims map[string]any) string
	// edit changes the default header and claims before token() runs.
	edit func(header, claims map[string]any)
	want error
}

func (tt hostileTest) run(t *testing.T, e *env, v *Verifier) {
	now := time.Now()
	header := map[string]any{"alg": e.iss.Algorithm(), "kid": e.iss.KeyID(), "typ": "at+jwt"}
	claims := map[string]any{
		"iss": e.iss.Issuer(), "aud": e.iss.Audience(), "sub": "alice", "jti": "j-" + tt.name, "sid": "s-1",
		"iat": float64(now.UnixMicro()) / 1e6, "exp": float64(now.Add(5*time.Minute).UnixMicro()) / 1e6,
	}
	if tt.edit != nil {
		tt.edit(header, claims)
	}
	var raw string
	if tt.token != nil {
		raw = tt.token(e.iss, header, claims)
	} else {
		raw = e.iss.SignRaw(t, header, claims)
	}
	c, err := v.Verify(context.Background(), raw)
	if tt.want == nil {
		if err != nil {
			t.Fatalf("Verify: %v, want success", err)
		}
		return
	}
	if !errors.Is(err, tt.want) {
		t.Fatalf("Verify error = %v, want %v", err, tt.want)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify error %v is not in the ErrInvalidToken class", err)
	}
	if c != nil {
		t.Fatalf("Verify returned claims %+v with an error", c)
	}
}

func TestHostileTokens(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, func(c *Config) { c.Algorithms = []string{EdDSA, RS256} })
	del := func(k string) func(h, c map[string]any) { return func(h, c map[string]any) { delete(c, k) } }
	setH := func(k string, val any) func(h, c map[string]any) { return func(h, c map[string]any) { h[k] = val } }
	setC := func(k string, val any) func(h, c map[string]any) { return func(h, c map[string]any) { c[k] = val } }
	unsigned := func(_ *verifiertest.Issuer, h, c map[string]any) string { return b64(h) + "." + b64(c) + "." }
	hs256 := func(iss *verifiertest.Issuer, h, c map[string]any) string {
		// The classic confusion attack: HMAC keyed with the public key bytes.
		signing := b64(h) + "." + b64(c)
		mac := hmac.New(sha256.New, iss.JWKS())
		mac.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	now := time.Now()
	at := func(d time.Duration) float64 { return float64(now.Add(d).UnixMicro()) / 1e6 }

	tests := []hostileTest{
		{name: "valid", want: nil},
		{name: "alg none", edit: setH("alg", "none"), token: unsigned, want: ErrAlgorithm},
		{name: "alg None", edit: setH("alg", "None"), token: unsigned, want: ErrAlgorithm},
		{name: "HS256 with the public key", edit: setH("alg", "HS256"), token: hs256, want: ErrAlgorithm},
		{name: "alg allowed but not the key's", edit: setH("alg", "RS256"), want: ErrAlgorithm},
		{name: "alg not a string", edit: setH("alg", 7), want: ErrAlgorithm},
		{name: "unknown kid", edit: setH("kid", "no-such-key"), want: ErrUnknownKey},
		{name: "empty kid", edit: setH("kid", ""), want: ErrHeader},
		{name: "missing kid", edit: func(h, _ map[string]any) { delete(h, "kid") }, want: ErrHeader},
		{name: "kid not a string", edit: setH("kid", 1), want: ErrHeader},
		{name: "path-like kid", edit: setH("kid", "../../../etc/passwd"), want: ErrUnknownKey},
		{name: "url kid", edit: setH("kid", "https://evil.example/key"), want: ErrUnknownKey},
		{name: "jku", edit: setH("jku", "https://evil.example/jwks.json"), want: ErrHeader},
		{name: "x5u", edit: setH("x5u", "https://evil.example/cert.pem"), want: ErrHeader},
		{name: "jwk", edit: setH("jwk", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}), want: ErrHeader},
		{name: "x5c", edit: setH("x5c", []string{"MIIB"}), want: ErrHeader},
		{name: "unknown crit", edit: setH("crit", []string{"exp-check"}), want: ErrHeader},
		{name: "wrong typ", edit: setH("typ", "id_token+jwt"), want: ErrHeader},
		{name: "missing exp", edit: del("exp"), want: ErrClaims},
		{name: "missing iss", edit: del("iss"), want: ErrClaims},
		{name: "missing aud", edit: del("aud"), want: ErrClaims},
		{name: "missing jti", edit: del("jti"), want: ErrClaims},
		{name: "missing sub", edit: del("sub"), want: ErrClaims},
		{name: "missing iat", edit: del("iat"), want: ErrClaims},
		{name: "wrong aud", edit: setC("aud", "other-api"), want: ErrClaims},
		{name: "wrong iss", edit: setC("iss", "https://evil.example"), want: ErrClaims},
		{name: "exp not a number", edit: setC("exp", "tomorrow"), want: ErrMalformed},
		{name: "lifetime over the maximum", edit: setC("exp", at(testMaxLifetime+time.Minute)), want: ErrClaims},
		{name: "future nbf", edit: setC("nbf", at(time.Minute)), want: ErrNotYetValid},
		{name: "future iat", edit: setC("iat", at(time.Minute)), want: ErrNotYetValid},
		{name: "expired beyond leeway", edit: setC("exp", at(-DefaultLeeway-time.Second)), want: ErrExpired},
		{name: "expired within leeway", edit: setC("exp", at(-DefaultLeeway/2)), want: nil},
		{name: "oversized", edit: setC("pad", strings.Repeat("x", DefaultMaxTokenSize)), want: ErrMalformed},
		{name: "bad base64", token: func(iss *verifiertest.Issuer, h, c map[string]any) string {
			return "!!!." + iss.SignRaw(t, h, c)
		}, want: ErrMalformed},
		{name: "extra segments", token: func(iss *verifiertest.Issuer, h, c map[string]any) string {
			return iss.SignRaw(t, h, c) + ".e30"
		}, want: ErrMalformed},
		{name: "two segments", token: unsigned2, want: ErrMalformed},
		{name: "header not json", token: func(iss *verifiertest.Issuer, h, c map[string]any) string {
			return base64.RawURLEncoding.EncodeToString([]byte("{nope")) + "." + b64(c) + ".c2ln"
		}, want: ErrMalformed},
		{name: "tampered payload", token: func(iss *verifiertest.Issuer, h, c map[string]any) string {
			parts := strings.Split(iss.SignRaw(t, h, c), ".")
			c["sub"] = "mallory"
			return parts[0] + "." + b64(c) + "." + parts[2]
		}, want: ErrSignature},
		{name: "tampered signature", token: func(iss *verifiertest.Issuer, h, c map[string]any) string {
			tok := iss.SignRaw(t, h, c)
			last := tok[len(tok)-2]
			flip := byte('A')
			if last == 'A' {
				flip = 'B'
			}
			return tok[:len(tok)-2] + string(flip) + tok[len(tok)-1:]
		}, want: ErrSignature},
		{name: "another key with the same kid", token: func(iss *verifiertest.Issuer, h, c map[string]any) string {
			other := verifiertest.NewIssuer(t)
			return other.SignRaw(t, h, c)
		}, want: ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, e, v) })
	}
}

func unsigned2(_ *verifiertest.Issuer, h, c map[string]any) string { return b64(h) + "." + b64(c) }

func TestVerifyClaims(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, nil)
	iat := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	raw := e.iss.Token(t, verifiertest.TokenOptions{
		Subject: "bob", SessionID: "sess-1", JTI: "jti-1", IssuedAt: iat, TTL: 2 * time.Minute,
		Extra: map[string]any{"roles": []string{"admin", "dev"}},
	})
	c, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "bob" || c.SessionID != "sess-1" || c.ID != "jti-1" || c.KeyID != e.iss.KeyID() || c.Issuer != e.iss.Issuer() {
		t.Fatalf("claims = %+v", c)
	}
	if !c.IssuedAt.Equal(iat) {
		t.Fatalf("IssuedAt = %v, want %v (sub-second precision kept)", c.IssuedAt, iat)
	}
	if got := c.ExpiresAt.Sub(c.IssuedAt); got != 2*time.Minute {
		t.Fatalf("lifetime = %v, want 2m", got)
	}
	var private struct {
		Roles []string `json:"roles"`
	}
	if err := c.Decode(&private); err != nil || len(private.Roles) != 2 || private.Roles[0] != "admin" {
		t.Fatalf("Decode private claims = %+v, %v", private, err)
	}
	// Seen again: the same claims come from the cache.
	c2, err := v.Verify(context.Background(), raw)
	if err != nil || c2 != c {
		t.Fatalf("second Verify = %p, %v; want the cached %p", c2, err, c)
	}
}

// TestClaimNames: a provider's own names for the session and token id
// (Entra's uti, an older Keycloak's session_state) are read exactly, and a
// token without a token id passes only where that is configured — and is
// still revoked by its session.
func TestClaimNames(t *testing.T) {
	e := newEnv(t)
	provider := e.verifier(t, func(c *Config) {
		c.SessionClaim, c.TokenIDClaim, c.TokenIDOptional = "session_state", "uti", true
	})
	strict := e.verifier(t, nil)
	entra := e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{
		"jti": nil, "sid": nil, "uti": "uti-1", "session_state": "ss-1",
	}})
	noID := e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"jti": nil, "sid": nil, "session_state": "ss-2"}})
	wrongCase := e.iss.Token(t, verifiertest.TokenOptions{Extra: map[string]any{"jti": nil, "UTI": "uti-3", "session_state": "ss-3"}})

	c, err := provider.Verify(context.Background(), entra)
	if err != nil || c.ID != "uti-1" || c.SessionID != "ss-1" {
		t.Fatalf("provider names: claims %+v, %v; want ID uti-1, SessionID ss-1", c, err)
	}
	c, err = provider.Verify(context.Background(), wrongCase)
	if err != nil || c.ID != "" || c.SessionID != "ss-3" {
		t.Fatalf("UTI is not uti: claims %+v, %v; want no ID", c, err)
	}
	if _, err := strict.Verify(context.Background(), noID); !errors.Is(err, ErrClaims) || !strings.Contains(err.Error(), "jti missing") {
		t.Fatalf("default names, no jti: %v, want ErrClaims naming jti", err)
	}
	if c, err := provider.Verify(context.Background(), noID); err != nil || c.ID != "" {
		t.Fatalf("no token id, optional: %+v, %v; want accepted with no ID", c, err)
	}

	e.srv.Revoke(t, events.NewToken(eventID("tok"), "uti-1", time.Now().Add(time.Hour), time.Now()))
	e.srv.Revoke(t, events.NewSession(eventID("ses"), "ss-2", time.Now()))
	eventually.True(t, 10*time.Second, "both revocations enforced", func() bool {
		_, err1 := provider.Verify(context.Background(), entra)
		_, err2 := provider.Verify(context.Background(), noID)
		return errors.Is(err1, ErrTokenRevoked) && errors.Is(err2, ErrSessionRevoked)
	})
}

func TestValidateAddsFailures(t *testing.T) {
	e := newEnv(t)
	errNoAdmin := errors.New("no admin role")
	v := e.verifier(t, func(c *Config) {
		c.Validate = func(c *Claims) error {
			if c.Subject != "admin" {
				return errNoAdmin
			}
			return nil
		}
	})
	_, err := v.Verify(context.Background(), e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice"}))
	if !errors.Is(err, ErrClaims) || !errors.Is(err, errNoAdmin) {
		t.Fatalf("Verify = %v, want ErrClaims wrapping the rule's error", err)
	}
	if _, err := v.Verify(context.Background(), e.iss.Token(t, verifiertest.TokenOptions{Subject: "admin"})); err != nil {
		t.Fatalf("Verify admin: %v", err)
	}
}

// TestCachedTokenStillExpires shows the verified-token cache skips the
// signature, never the expiry check.
func TestCachedTokenStillExpires(t *testing.T) {
	e := newEnv(t)
	var offset atomicDuration
	v := e.verifier(t, func(c *Config) { c.Now = func() time.Time { return time.Now().Add(offset.Load()) } })
	raw := e.iss.Token(t, verifiertest.TokenOptions{TTL: time.Minute})
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	offset.Store(time.Minute + DefaultLeeway)
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrExpired) {
		t.Fatalf("Verify after expiry = %v, want ErrExpired", err)
	}
}

func TestConfigValidation(t *testing.T) {
	e := newEnv(t)
	base := e.config(t)
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, "Issuer is required"},
		{"no audience", func(c *Config) { c.Audiences = nil }, "Audiences is required"},
		{"no algorithms", func(c *Config) { c.Algorithms = nil }, "Algorithms is required"},
		{"HS256", func(c *Config) { c.Algorithms = []string{"HS256"} }, "not supported"},
		{"none", func(c *Config) { c.Algorithms = []string{"none"} }, "not supported"},
		{"no key source", func(c *Config) { c.Keys = nil }, "Keys is required"},
		{"no jetstream", func(c *Config) { c.JetStream = nil }, "JetStream is required"},
		{"huge leeway", func(c *Config) { c.Leeway = time.Hour }, "Leeway"},
		{"tiny max size", func(c *Config) { c.MaxTokenSize = 10 }, "MaxTokenSize"},
		{"fallback without one", func(c *Config) { c.StalePolicy = StaleFallback }, "needs a Fallback"},
		{"negative capacity", func(c *Config) { c.Capacity = -1 }, "Capacity"},
		{"token id in sub", func(c *Config) { c.TokenIDClaim = "sub" }, `TokenIDClaim "sub"`},
		{"session in exp", func(c *Config) { c.SessionClaim = "exp" }, `SessionClaim "exp"`},
		{"one claim for both", func(c *Config) { c.SessionClaim, c.TokenIDClaim = "uti", "uti" }, "a session id is not a token id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.Audiences = append([]string(nil), base.Audiences...)
			tt.edit(&cfg)
			v, err := New(cfg)
			if err == nil {
				v.Close()
				t.Fatalf("New accepted a bad config")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error %q does not mention %q", err, tt.want)
			}
		})
	}
	// New copies the config: the caller's struct is not changed.
	cfg := base
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if cfg.Leeway != 0 || cfg.Capacity != 0 || cfg.Now != nil {
		t.Fatalf("New wrote defaults back into the caller's config: %+v", cfg)
	}
}

// TestNewJWKSRefusesHTTPElsewhere: keys fetched in clear text from another
// host could be replaced by anyone on the path.
func TestNewJWKSRefusesHTTPElsewhere(t *testing.T) {
	if _, err := NewJWKS(JWKSConfig{URL: "http://keys.example.com/jwks.json"}); err == nil || !strings.Contains(err.Error(), "http") {
		t.Fatalf("NewJWKS(http, non-loopback) = %v, want an error about http", err)
	}
}

// TestKeysUnavailable: a JWKS that cannot be fetched is "cannot decide now"
// (503), never "bad token", and the verifier is not ready.
func TestKeysUnavailable(t *testing.T) {
	e := newEnv(t)
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	cfg := e.config(t)
	cfg.Keys = jwks(t, down.URL+"/jwks.json")
	v := start(t, cfg)
	_, err := v.Verify(context.Background(), e.iss.Token(t, verifiertest.TokenOptions{}))
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Verify with no keys = %v, want ErrKeysUnavailable (unavailable class)", err)
	}
	if v.Ready() {
		t.Fatal("Ready with no keys ever fetched")
	}
}

// TestInspectIgnoresRevocation: Inspect checks the token, not its revocation.
func TestInspectIgnoresRevocation(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, nil)
	raw := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "gone"})
	e.srv.Revoke(t, events.NewSession(eventID("ses"), "gone", time.Now()))
	eventually.True(t, 5*time.Second, "revocation applied", func() bool {
		_, err := v.Verify(context.Background(), raw)
		return errors.Is(err, ErrSessionRevoked)
	})
	c, err := v.Inspect(context.Background(), raw)
	if err != nil || c.SessionID != "gone" {
		t.Fatalf("Inspect of a revoked token = %+v, %v; want its claims", c, err)
	}
	if _, err := v.Inspect(context.Background(), raw+"x"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Inspect of a tampered token = %v, want ErrInvalidToken", err)
	}
}
