package verifiertest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// HostileToken is one row of [Issuer.HostileTokens]: a token and the reason
// code (verifier.Reason) a verifier refuses it with; "" for a token it must
// accept.
type HostileToken struct {
	Name, Token, Reason string
}

// HostileLimits are the settings of the verifier the hostile tokens are
// meant for.
type HostileLimits struct {
	// MaxTokenLifetime and Leeway are the verifier's.
	MaxTokenLifetime, Leeway time.Duration
	// MaxTokenSize is the verifier's largest token, in bytes.
	MaxTokenSize int
}

// HostileTokens returns the table of hostile tokens every API in front of
// a verifier is tested with (pkg/verifier, the authorizer over HTTP and
// gRPC): forged algorithms, headers that point at other keys, missing and
// wrong claims, bad times, malformed and tampered tokens, and the valid
// tokens beside them. The verifier must trust i and allow i's algorithm
// and RS256, with the limits l.
func (i *Issuer) HostileTokens(tb testing.TB, l HostileLimits) []HostileToken {
	tb.Helper()
	del := func(k string) func(h, c map[string]any) { return func(h, c map[string]any) { delete(c, k) } }
	setH := func(k string, val any) func(h, c map[string]any) { return func(h, c map[string]any) { h[k] = val } }
	setC := func(k string, val any) func(h, c map[string]any) { return func(h, c map[string]any) { c[k] = val } }
	unsigned := func(h, c map[string]any) string { return b64JSON(h) + "." + b64JSON(c) + "." }
	hs256 := func(h, c map[string]any) string {
		// The classic confusion attack: HMAC keyed with the public key bytes.
		signing := b64JSON(h) + "." + b64JSON(c)
		mac := hmac.New(sha256.New, i.JWKS())
		mac.Write([]byte(signing))
		return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	now := time.Now()
	at := func(d time.Duration) float64 { return float64(now.Add(d).UnixMicro()) / 1e6 }
	type row struct {
		name   string
		edit   func(header, claims map[string]any) // on the default header and claims
		token  func(header, claims map[string]any) string
		reason string
	}
	rows := []row{
		{name: "valid"},
		{name: "alg none", edit: setH("alg", "none"), token: unsigned, reason: "algorithm"},
		{name: "alg None", edit: setH("alg", "None"), token: unsigned, reason: "algorithm"},
		{name: "HS256 with the public key", edit: setH("alg", "HS256"), token: hs256, reason: "algorithm"},
		{name: "alg allowed but not the key's", edit: setH("alg", "RS256"), reason: "algorithm"},
		{name: "alg not a string", edit: setH("alg", 7), reason: "algorithm"},
		{name: "unknown kid", edit: setH("kid", "no-such-key"), reason: "unknown_key"},
		{name: "empty kid", edit: setH("kid", ""), reason: "header"},
		{name: "missing kid", edit: func(h, _ map[string]any) { delete(h, "kid") }, reason: "header"},
		{name: "kid not a string", edit: setH("kid", 1), reason: "header"},
		{name: "path-like kid", edit: setH("kid", "../../../etc/passwd"), reason: "unknown_key"},
		{name: "url kid", edit: setH("kid", "https://evil.example/key"), reason: "unknown_key"},
		{name: "jku", edit: setH("jku", "https://evil.example/jwks.json"), reason: "header"},
		{name: "x5u", edit: setH("x5u", "https://evil.example/cert.pem"), reason: "header"},
		{name: "jwk", edit: setH("jwk", map[string]any{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}), reason: "header"},
		{name: "x5c", edit: setH("x5c", []string{"MIIB"}), reason: "header"},
		{name: "unknown crit", edit: setH("crit", []string{"exp-check"}), reason: "header"},
		{name: "wrong typ", edit: setH("typ", "id_token+jwt"), reason: "header"},
		{name: "missing exp", edit: del("exp"), reason: "claims"},
		{name: "missing iss", edit: del("iss"), reason: "claims"},
		{name: "missing aud", edit: del("aud"), reason: "claims"},
		{name: "missing jti", edit: del("jti"), reason: "claims"},
		{name: "missing sub", edit: del("sub"), reason: "claims"},
		{name: "missing iat", edit: del("iat"), reason: "claims"},
		{name: "wrong aud", edit: setC("aud", "other-api"), reason: "claims"},
		{name: "wrong iss", edit: setC("iss", "https://evil.example"), reason: "claims"},
		{name: "exp not a number", edit: setC("exp", "tomorrow"), reason: "malformed"},
		{name: "lifetime over the maximum", edit: setC("exp", at(l.MaxTokenLifetime+time.Minute)), reason: "claims"},
		{name: "future nbf", edit: setC("nbf", at(time.Minute)), reason: "not_yet_valid"},
		{name: "future iat", edit: setC("iat", at(time.Minute)), reason: "not_yet_valid"},
		{name: "expired beyond leeway", edit: setC("exp", at(-l.Leeway-time.Second)), reason: "expired"},
		{name: "expired within leeway", edit: setC("exp", at(-l.Leeway/2))},
		{name: "oversized", edit: setC("pad", strings.Repeat("x", l.MaxTokenSize)), reason: "malformed"},
		{name: "bad base64", token: func(h, c map[string]any) string { return "!!!." + i.SignRaw(tb, h, c) }, reason: "malformed"},
		{name: "extra segments", token: func(h, c map[string]any) string { return i.SignRaw(tb, h, c) + ".e30" }, reason: "malformed"},
		{name: "two segments", token: func(h, c map[string]any) string { return b64JSON(h) + "." + b64JSON(c) }, reason: "malformed"},
		{name: "header not json", token: func(_, c map[string]any) string {
			return base64.RawURLEncoding.EncodeToString([]byte("{nope")) + "." + b64JSON(c) + ".c2ln"
		}, reason: "malformed"},
		{name: "tampered payload", token: func(h, c map[string]any) string {
			parts := strings.Split(i.SignRaw(tb, h, c), ".")
			c["sub"] = "mallory"
			return parts[0] + "." + b64JSON(c) + "." + parts[2]
		}, reason: "signature"},
		{name: "tampered signature", token: func(h, c map[string]any) string {
			tok := i.SignRaw(tb, h, c)
			flip := byte('A')
			if tok[len(tok)-2] == 'A' {
				flip = 'B'
			}
			return tok[:len(tok)-2] + string(flip) + tok[len(tok)-1:]
		}, reason: "signature"},
		{name: "another key with the same kid", token: func(h, c map[string]any) string {
			return NewIssuer(tb).SignRaw(tb, h, c)
		}, reason: "signature"},
	}
	out := make([]HostileToken, 0, len(rows))
	for _, r := range rows {
		header := map[string]any{"alg": i.Algorithm(), "kid": i.KeyID(), "typ": "at+jwt"}
		claims := map[string]any{
			"iss": i.Issuer(), "aud": i.Audience(), "sub": "alice", "jti": "j-" + r.name, "sid": "s-1",
			"iat": float64(now.UnixMicro()) / 1e6, "exp": float64(now.Add(5*time.Minute).UnixMicro()) / 1e6,
		}
		if r.edit != nil {
			r.edit(header, claims)
		}
		raw := ""
		if r.token != nil {
			raw = r.token(header, claims)
		} else {
			raw = i.SignRaw(tb, header, claims)
		}
		out = append(out, HostileToken{Name: r.name, Token: raw, Reason: r.reason})
	}
	return out
}

// b64JSON is v as JSON in base64url without padding.
func b64JSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
