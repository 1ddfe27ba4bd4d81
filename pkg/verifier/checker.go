package verifier

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// CheckerConfig is what a valid token of one issuer looks like. It is
// copied by [NewChecker]; zero fields take the documented defaults; nothing
// is written back.
type CheckerConfig struct {
	// Issuer is the exact iss every token must carry. Required.
	Issuer string
	// Audiences lists accepted aud values; a token must name at least one.
	// Required.
	Audiences []string
	// Algorithms is the allow-list of JWS algorithms (EdDSA, ES256, RS256).
	// Required: there is no default, so an algorithm is never accepted by
	// accident. "none" and HMAC algorithms are never accepted.
	Algorithms []string
	// Leeway tolerated on exp, nbf and iat for clock skew. Default 5s, at
	// most 1m.
	Leeway time.Duration
	// MaxTokenLifetime is the longest exp - iat accepted; longer tokens are
	// refused (ErrClaims). Default 1h.
	MaxTokenLifetime time.Duration
	// MaxTokenSize caps the compact token, in bytes, before any parsing.
	// Default 8 KiB.
	MaxTokenSize int
	// TokenCacheBytes bounds the cache of tokens already checked, which
	// lets a repeated token skip parsing and the signature (never the
	// expiry). Zero or -1: no cache.
	TokenCacheBytes int64
	// Validate, if set, is an extra rule run on every token after the
	// built-in checks; an error refuses the token with ErrClaims. It can
	// only add failures.
	Validate func(*Claims) error
	// Now is the clock for every exp, nbf and iat comparison; nil means
	// time.Now.
	Now func() time.Time
}

// withDefaults validates c and returns a copy with defaults filled in; every
// problem is reported through bad.
func (c CheckerConfig) withDefaults(bad func(format string, args ...any)) CheckerConfig {
	if c.Issuer == "" {
		bad("Issuer is required")
	}
	if len(c.Audiences) == 0 || slices.Contains(c.Audiences, "") {
		bad("Audiences is required and must not contain an empty value")
	}
	if len(c.Algorithms) == 0 {
		bad("Algorithms is required (an explicit allow-list of %v)", supportedAlgorithms)
	}
	for _, a := range c.Algorithms {
		if !slices.Contains(supportedAlgorithms, a) {
			bad("algorithm %q not supported (use %v)", a, supportedAlgorithms)
		}
	}
	c.Audiences = slices.Clone(c.Audiences)
	c.Algorithms = slices.Clone(c.Algorithms)
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.MaxTokenLifetime == 0 {
		c.MaxTokenLifetime = DefaultMaxTokenLifetime
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		bad("Leeway %s not in (0, %s]", c.Leeway, MaxLeeway)
	}
	if c.MaxTokenLifetime < 0 || c.MaxTokenLifetime > 7*24*time.Hour {
		bad("MaxTokenLifetime %s not in (0, 168h]", c.MaxTokenLifetime)
	}
	if c.MaxTokenSize == 0 {
		c.MaxTokenSize = DefaultMaxTokenSize
	}
	if c.MaxTokenSize < 256 || c.MaxTokenSize > 1<<20 {
		bad("MaxTokenSize %d not in [256, 1MiB]", c.MaxTokenSize)
	}
	if c.TokenCacheBytes < -1 {
		bad("TokenCacheBytes must be positive, or -1 to disable")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Checker checks access tokens by their keys and claims alone: size,
// header, key, signature, claims and expiry — no revocation state, no
// stream. A [Verifier] is a Checker plus the revocation state and its feed;
// code that only inspects tokens (an issuer logging a session out, a
// revoker revoking a token it is shown) needs only a Checker.
//
// A Checker is safe for concurrent use.
type Checker struct {
	cfg       CheckerConfig
	keys      KeySource
	methods   map[string]jwt.SigningMethod // the allow-list, resolved once
	validator *jwt.Validator
	tokens    *tokenCache // nil when disabled
}

// NewChecker validates cfg and returns a Checker that verifies signatures
// with keys ([StaticKeys], a [JWKS] — run it — or any [KeySource]). Every
// misconfiguration is reported here, at once.
func NewChecker(keys KeySource, cfg CheckerConfig) (*Checker, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("verifier: config: "+format, args...))
	}
	if keys == nil {
		bad("a KeySource is required: StaticKeys, NewJWKS or your own")
	}
	cfg = cfg.withDefaults(bad)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	k := &Checker{cfg: cfg, keys: keys, methods: make(map[string]jwt.SigningMethod, len(cfg.Algorithms))}
	for _, alg := range cfg.Algorithms {
		k.methods[alg] = jwt.GetSigningMethod(alg)
	}
	k.validator = jwt.NewValidator(
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audiences...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	)
	if cfg.TokenCacheBytes > 0 {
		k.tokens = newTokenCache(cfg.TokenCacheBytes)
	}
	return k, nil
}

// Check verifies raw, a compact JWS access token, by keys and claims, and
// returns its claims: in order size; header (alg in the allow-list, a kid,
// no jku/x5u/jwk/x5c, no crit); key by kid; signature; exp, nbf, iat, iss,
// aud, sub, jti and the lifetime bound; CheckerConfig.Validate. It MUST NOT
// be used alone to authorise a request where tokens can be revoked: that
// is what [Verifier.Verify] is for.
//
// On any failure it returns nil and an error wrapping [ErrInvalidToken] or
// [ErrUnavailable] (keys not available) and one precise reason.
func (k *Checker) Check(ctx context.Context, raw string) (*Claims, error) {
	return k.check(ctx, raw, k.cfg.Now())
}

// KeysReady reports whether the key source can answer (see KeySource.Ready).
func (k *Checker) KeysReady() bool {
	select {
	case <-k.keys.Ready():
		return true
	default:
		return false
	}
}

// Run runs the key source's background work, if it has any (a [JWKS] keeps
// itself fresh), until ctx ends; then it returns nil. A [Verifier] runs its
// Checker itself; run a Checker of your own beside the code that uses it.
func (k *Checker) Run(ctx context.Context) error {
	if r, ok := k.keys.(runner); ok {
		return r.Run(ctx)
	}
	<-ctx.Done()
	return nil
}

// Close releases the token cache.
func (k *Checker) Close() {
	if k.tokens != nil {
		k.tokens.close()
	}
}

func (k *Checker) check(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	if raw == "" {
		return nil, fail(ErrMalformed, "empty token")
	}
	if len(raw) > k.cfg.MaxTokenSize {
		return nil, fail(ErrMalformed, "token larger than the size limit")
	}
	c, ok := k.tokens.get(raw)
	if ok {
		// The signature and claims were checked when the token was first
		// seen; time has moved on since, so expiry is checked again.
		if !now.Before(c.ExpiresAt.Add(k.cfg.Leeway)) {
			return nil, fail(ErrExpired, "")
		}
	} else {
		var err error
		if c, err = k.parse(ctx, raw); err != nil {
			return nil, err
		}
		k.tokens.add(raw, c, now.Add(-k.cfg.Leeway))
	}
	return c, nil
}

// refusedParams are the header parameters that name key material or
// extensions. Following them would let the token choose the key that
// verifies it, so any of them refuses the token; they are matched under
// case folding too, since other JOSE readers built on encoding/json would
// honour "JKU".
var refusedParams = [...]string{"jku", "x5u", "jwk", "x5c", "crit", "b64"}

func refusedParam(header []member) string {
	for _, m := range header {
		for _, name := range refusedParams {
			if bytes.EqualFold(m.name, []byte(name)) {
				return name
			}
		}
	}
	return ""
}

// segment is strict base64url (RFC 7515 §2: no padding, canonical bits).
var segment = base64.RawURLEncoding.Strict()

// parse checks everything that can be checked from the token alone: the
// header, the key, the signature (before the claims are even decoded), then
// the claims, with golang-jwt's signing methods and claims validator.
func (k *Checker) parse(ctx context.Context, raw string) (*Claims, error) {
	dot1 := strings.IndexByte(raw, '.')
	if dot1 < 0 {
		return nil, fail(ErrMalformed, "not three segments")
	}
	dot2 := strings.IndexByte(raw[dot1+1:], '.')
	if dot2 < 0 {
		return nil, fail(ErrMalformed, "not three segments")
	}
	dot2 += dot1 + 1
	if strings.IndexByte(raw[dot2+1:], '.') >= 0 {
		return nil, fail(ErrMalformed, "not three segments")
	}
	hb, err := segment.DecodeString(raw[:dot1])
	if err != nil {
		return nil, fail(ErrMalformed, "header is not base64url")
	}
	// Header parameters are read by their exact names (see readObject).
	var hbuf [smallObject]member
	header, err := readObject(hb, hbuf[:])
	if errors.Is(err, errDuplicateName) {
		return nil, fail(ErrMalformed, "a header parameter appears twice")
	}
	if err != nil {
		return nil, fail(ErrMalformed, "header is not a json object")
	}
	alg, _ := stringValue(lookup(header, "alg"))
	method, ok := k.methods[alg]
	if !ok {
		return nil, fail(ErrAlgorithm, "")
	}
	if name := refusedParam(header); name != "" {
		return nil, fail(ErrHeader, "header "+name+" is refused")
	}
	if typ := lookup(header, "typ"); typ != nil && !acceptedType(typ) {
		return nil, fail(ErrHeader, "typ is not at+jwt")
	}
	kid, ok := stringValue(lookup(header, "kid"))
	if !ok || !validKID(kid) {
		return nil, fail(ErrHeader, "kid missing or not a short printable string")
	}
	key, err := k.keys.Key(ctx, kid)
	if errors.Is(err, ErrUnknownKey) {
		return nil, fail(ErrUnknownKey, "") // the kid is token content: not echoed
	}
	if err != nil {
		// The key source could not answer (JWKS never fetched, ctx ended):
		// that says nothing about the token.
		return nil, &verifyError{class: ErrUnavailable, reason: ErrKeysUnavailable, cause: err}
	}
	if !key.AllowsAlgorithm(alg) {
		return nil, fail(ErrAlgorithm, "algorithm does not match the key")
	}
	sig, err := segment.DecodeString(raw[dot2+1:])
	if err != nil {
		return nil, fail(ErrMalformed, "signature is not base64url")
	}
	if err := method.Verify(raw[:dot2], sig, key.Public); err != nil {
		return nil, fail(ErrSignature, "")
	}
	cb, err := segment.DecodeString(raw[dot1+1 : dot2])
	if err != nil {
		return nil, fail(ErrMalformed, "claims are not base64url")
	}
	tc, err := decodeClaims(cb)
	if err != nil {
		return nil, err
	}
	if err := k.validator.Validate(&tc); err != nil {
		return nil, classifyClaims(err)
	}
	// sub, jti and sid must be values a revocation can name (pkg/events
	// owns that rule): a token no logout could reach is refused.
	switch {
	case events.ValidValue(events.KindSubject, tc.Subject) != nil:
		return nil, fail(ErrClaims, "sub missing, longer than 256 bytes or not printable")
	case events.ValidValue(events.KindToken, tc.ID) != nil:
		return nil, fail(ErrClaims, "jti missing, longer than 256 bytes or not printable")
	case tc.SessionID != "" && events.ValidValue(events.KindSession, tc.SessionID) != nil:
		return nil, fail(ErrClaims, "sid longer than 256 bytes or not printable")
	case tc.IssuedAt.IsZero():
		return nil, fail(ErrClaims, "iat missing")
	case tc.ExpiresAt.Sub(tc.IssuedAt.Time) > k.cfg.MaxTokenLifetime:
		return nil, fail(ErrClaims, "lifetime exceeds the configured maximum")
	}
	c := &Claims{
		Issuer:    tc.Issuer,
		Subject:   tc.Subject,
		Audience:  []string(tc.Audience),
		SessionID: tc.SessionID,
		ID:        tc.ID,
		KeyID:     kid,
		IssuedAt:  tc.IssuedAt.Time,
		ExpiresAt: tc.ExpiresAt.Time,
		NotBefore: tc.NotBefore.Time,
		raw:       raw,
	}
	if k.cfg.Validate != nil {
		if err := k.cfg.Validate(c); err != nil {
			return nil, &verifyError{class: ErrInvalidToken, reason: ErrClaims, cause: err}
		}
	}
	return c, nil
}

// classifyClaims maps golang-jwt's validator errors to the verifier's
// sentinels. Their text is not kept: it can quote the token.
func classifyClaims(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(ErrExpired, "")
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fail(ErrNotYetValid, "")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fail(ErrClaims, "wrong iss")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fail(ErrClaims, "wrong aud")
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fail(ErrClaims, "a required claim is missing")
	}
	return fail(ErrClaims, "")
}

func acceptedType(typ []byte) bool {
	s, ok := stringValue(typ)
	if !ok {
		return false
	}
	switch s {
	case "at+jwt", "application/at+jwt", "JWT", "jwt":
		return true
	}
	return false
}

func validKID(kid string) bool {
	if kid == "" || len(kid) > 128 {
		return false
	}
	for _, r := range kid {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}
