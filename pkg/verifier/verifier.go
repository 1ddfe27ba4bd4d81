package verifier

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtrevoke/jwtrevoke/internal/feed"
	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
	"github.com/jwtrevoke/jwtrevoke/internal/revocation"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Verifier checks access tokens locally: signature, claims, then the
// revocation state fed by the JetStream stream. Build it with [New], start its
// background work with [Verifier.Run], and call [Verifier.Verify] (or use
// [Verifier.Middleware]) per request.
//
// A Verifier is safe for concurrent use.
type Verifier struct {
	cfg       Config
	keys      KeySource
	remote    *keyset.Remote               // non-nil when keys come from Config.JWKSURL
	methods   map[string]jwt.SigningMethod // the allow-list, resolved once
	validator *jwt.Validator
	tokens    *tokenCache // nil when disabled
	store     *revocation.Store
	feed      *feed.Feed
	metrics   *metrics

	closeOnce sync.Once
}

// New validates cfg and builds a Verifier. Every misconfiguration is
// reported here, at start, never at the first request. The Verifier answers
// [ErrNotReady] until [Verifier.Run] has replayed the revocation stream.
func New(cfg Config) (*Verifier, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg}

	switch {
	case len(cfg.Keys) > 0:
		s, err := keyset.NewStatic(cfg.Keys...)
		if err != nil {
			return nil, fmt.Errorf("verifier: config: %w", err)
		}
		v.keys = s
	case cfg.JWKSURL != "":
		r, err := keyset.NewRemote(keyset.RemoteConfig{
			URL:               cfg.JWKSURL,
			InsecureAllowHTTP: cfg.InsecureJWKSOverHTTP,
			Now:               cfg.Now,
			Logger:            cfg.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("verifier: config: %w", err)
		}
		v.keys, v.remote = r, r
	default:
		v.keys = cfg.KeySource
	}

	v.methods = make(map[string]jwt.SigningMethod, len(cfg.Algorithms))
	for _, alg := range cfg.Algorithms {
		v.methods[alg] = jwt.GetSigningMethod(alg)
	}
	v.validator = jwt.NewValidator(
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audiences...),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
	)

	v.store, err = revocation.New(revocation.Config{
		Capacity:         cfg.Capacity,
		MaxTokenLifetime: cfg.MaxTokenLifetime,
		Leeway:           cfg.Leeway,
		Now:              cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("verifier: config: %w", err)
	}
	if cfg.TokenCacheBytes > 0 {
		if v.tokens, err = newTokenCache(cfg.TokenCacheBytes); err != nil {
			v.store.Close()
			return nil, err
		}
	}
	v.metrics, err = newMetrics(v)
	if err != nil {
		v.Close()
		return nil, err
	}
	v.feed, err = feed.New(feed.Config{
		JetStream:      cfg.JetStream,
		Stream:         cfg.Stream,
		Applier:        v.store,
		MinMaxAge:      cfg.MaxTokenLifetime + cfg.Leeway,
		Now:            cfg.Now,
		Logger:         cfg.Logger,
		TracerProvider: cfg.TracerProvider,
		Observer:       v.metrics,
	})
	if err != nil {
		v.Close()
		return nil, fmt.Errorf("verifier: config: %w", err)
	}
	return v, nil
}

// Run replays the revocation stream, then follows it, and keeps a JWKS
// fresh, until ctx ends; then it returns nil. It returns an error early only
// for a condition a restart cannot fix, such as a stream that retains events
// for less than MaxTokenLifetime + Leeway. Call it once.
func (v *Verifier) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	run(v.feed.Run)
	if v.remote != nil {
		run(v.remote.Run)
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// WaitReady blocks until the verifier is ready (see [Verifier.Ready]) or ctx
// ends.
func (v *Verifier) WaitReady(ctx context.Context) error {
	if err := v.feed.WaitReady(ctx); err != nil {
		return err
	}
	if v.remote == nil {
		return nil
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !v.keysReady() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Ready reports whether the verifier can decide: the revocation stream has
// been replayed up to the head seen at start, and keys are available.
func (v *Verifier) Ready() bool { return v.feed.Ready() && v.keysReady() }

func (v *Verifier) keysReady() bool {
	return v.remote == nil || !v.remote.Status().LastFetch.IsZero()
}

// Close releases the verifier's memory. Call it after Run has returned.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		if v.metrics != nil {
			v.metrics.close()
		}
		if v.tokens != nil {
			v.tokens.close()
		}
		v.store.Close()
	})
}

// Verify checks raw, a compact JWS access token, and returns its claims.
//
// In order: size; header (alg in the allow-list, a kid, no jku/x5u/jwk/x5c,
// no crit); key by kid; signature; exp, nbf, iat, iss, aud, sub, jti and the
// lifetime bound; Config.Validate; then, only for a token that passed all
// that, readiness, the revocation state and staleness. A token seen before
// skips parsing and the signature, never the expiry and revocation checks.
// Verify makes no network call except through a KeySource that does (a JWKS
// refresh on an unknown kid, rate-limited).
//
// On any failure it returns nil and an error wrapping [ErrInvalidToken] or
// [ErrUnavailable] and one precise reason.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	c, err := v.verify(ctx, raw)
	v.metrics.count(err)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Inspect checks everything Verify checks about the token itself — size,
// header, key, signature, claims, expiry — but not the revocation state,
// readiness or staleness. It is for services that act on a token whatever
// its revocation status, such as a revoker revoking it or an issuer logging
// its session out (idempotently). It MUST NOT be used to authorise a
// request: use Verify.
func (v *Verifier) Inspect(ctx context.Context, raw string) (*Claims, error) {
	return v.inspect(ctx, raw, v.cfg.Now())
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Claims, error) {
	// One clock reading serves the expiry and the staleness checks.
	now := v.cfg.Now()
	c, err := v.inspect(ctx, raw, now)
	if err != nil {
		return nil, err
	}
	if err := v.checkRevocation(ctx, c, now); err != nil {
		return nil, err
	}
	return c, nil
}

func (v *Verifier) inspect(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	if raw == "" {
		return nil, fail(ErrMalformed, "empty token")
	}
	if len(raw) > v.cfg.MaxTokenSize {
		return nil, fail(ErrMalformed, "token larger than the size limit")
	}
	c, ok := v.tokens.get(raw)
	if ok {
		// The signature and claims were checked when the token was first
		// seen; time has moved on since, so expiry is checked again.
		if !now.Before(c.ExpiresAt.Add(v.cfg.Leeway)) {
			return nil, fail(ErrExpired, "")
		}
	} else {
		var err error
		if c, err = v.parse(ctx, raw); err != nil {
			return nil, err
		}
		v.tokens.add(raw, c, now.Add(-v.cfg.Leeway))
	}
	return c, nil
}

// checkRevocation runs after the signature and claims: forged tokens never
// drive a look-up (promise 9).
func (v *Verifier) checkRevocation(ctx context.Context, c *Claims, now time.Time) error {
	if !v.feed.Ready() {
		return fail(ErrNotReady, "")
	}
	err := v.store.Check(revocation.Token{JTI: c.ID, SID: c.SessionID, Sub: c.Subject, KID: c.KeyID, IssuedAt: c.IssuedAt})
	if err != nil {
		return classifyRevocation(err)
	}
	if v.feed.StalenessAt(now) <= v.cfg.MaxStaleness {
		return nil
	}
	switch v.cfg.StalePolicy {
	case InsecureStaleAccept:
		return nil
	case StaleFallback:
		err := v.cfg.Fallback.Check(ctx, c)
		if err == nil {
			return nil
		}
		if r := classifyRevocation(err); !errors.Is(r, ErrUnavailable) {
			return r
		}
		return &verifyError{class: ErrUnavailable, reason: ErrStale, detail: "fallback unavailable", cause: err}
	}
	return fail(ErrStale, "")
}

// classifyRevocation turns an error from the revocation store or a
// Fallback into a Verify error.
func classifyRevocation(err error) error {
	for _, s := range []error{ErrKeyRevoked, ErrTokenRevoked, ErrSessionRevoked, ErrSubjectRevoked, ErrOverCapacity} {
		if errors.Is(err, s) {
			return wrap(s, err)
		}
	}
	return &verifyError{class: ErrUnavailable, reason: ErrStale, cause: err}
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
func (v *Verifier) parse(ctx context.Context, raw string) (*Claims, error) {
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
	method, ok := v.methods[alg]
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
	key, err := v.keys.Key(ctx, kid)
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
	if err := v.validator.Validate(&tc); err != nil {
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
	case tc.ExpiresAt.Sub(tc.IssuedAt.Time) > v.cfg.MaxTokenLifetime:
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
	if v.cfg.Validate != nil {
		if err := v.cfg.Validate(c); err != nil {
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
