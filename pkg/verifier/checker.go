package verifier

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
	// SessionClaim names the claim that carries the session id
	// ([Claims.SessionID], what a session revocation names). Default
	// "sid"; a provider may use another ("session_state" at older
	// Keycloaks). Like every claim it is read by its exact name.
	SessionClaim string
	// TokenIDClaim names the claim that carries the token id ([Claims.ID],
	// what a token revocation names). Default "jti"; Entra ID puts it in
	// "uti".
	TokenIDClaim string
	// TokenIDOptional accepts tokens without a token id. Such a token can
	// still be revoked by its session, subject or key, never on its own.
	// Default false: a token without one is refused (ErrClaims).
	TokenIDOptional bool
	// Providers are further issuers whose tokens are trusted, each with its
	// own keys, audiences, algorithms and claim names (a migration from
	// one provider to another, or an outside provider beside this
	// project's issuer). A token is checked by the rules of the issuer its
	// iss names; the rest of this config applies to all of them.
	Providers []Provider
	// EpochScopes names the claims whose values are epoch scopes
	// ("client_id", "azp", a tenant claim, "email"; at most
	// MaxEpochScopes): a scope revocation of such a claim and value
	// refuses every token that carries it and was issued up to the
	// revocation's epoch. Read by exact name, string values only (a claim
	// of another type is no scope); a value no revocation could name
	// (over 256 bytes, control characters) refuses the token. Every
	// token's iss is a scope without being listed. Default none.
	EpochScopes []string
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
	own := c.own(nil).withDefaults("", bad)
	c.Audiences, c.Algorithms, c.SessionClaim, c.TokenIDClaim = own.Audiences, own.Algorithms, own.SessionClaim, own.TokenIDClaim
	issuers := map[string]string{c.Issuer: "Issuer"}
	names := map[string]bool{}
	c.Providers = slices.Clone(c.Providers)
	for i, p := range c.Providers {
		where := fmt.Sprintf("Providers[%d] (%s): ", i, p.Name)
		if p.Name == "" {
			bad("Providers[%d]: Name is required", i)
		} else if names[p.Name] {
			bad("%sName is used twice", where)
		}
		names[p.Name] = true
		if p.Keys == nil {
			bad("%sKeys is required: StaticKeys, NewJWKS or your own KeySource", where)
		}
		if other, ok := issuers[p.Issuer]; ok && p.Issuer != "" {
			bad("%sIssuer %q is already %s's: one issuer, one set of rules", where, p.Issuer, other)
		}
		issuers[p.Issuer] = "Providers[" + strconv.Itoa(i) + "]"
		c.Providers[i] = p.withDefaults(where, bad)
	}
	c.EpochScopes = slices.Clone(c.EpochScopes)
	if err := CheckEpochScopes(c.EpochScopes); err != nil {
		bad("%s", err)
	}
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

// Provider is an issuer a [Checker] trusts beside its own (see
// CheckerConfig.Providers): what its tokens look like and the keys that
// sign them. The fields mean what CheckerConfig's fields of the same names
// mean, with the same defaults.
type Provider struct {
	// Name identifies the provider in errors and logs. Required, unique.
	Name string
	// Issuer is the exact iss of its tokens. Required.
	Issuer string
	// Keys verifies its signatures. Required.
	Keys KeySource
	// Audiences and Algorithms are required, as for the own issuer.
	Audiences  []string
	Algorithms []string
	// SessionClaim, TokenIDClaim and TokenIDOptional: where its tokens
	// carry the session id and the token id (docs/providers.md).
	SessionClaim    string
	TokenIDClaim    string
	TokenIDOptional bool
}

// own returns the rules of the config's own issuer, with keys, as a
// Provider.
func (c CheckerConfig) own(keys KeySource) Provider {
	return Provider{
		Issuer: c.Issuer, Keys: keys, Audiences: c.Audiences, Algorithms: c.Algorithms,
		SessionClaim: c.SessionClaim, TokenIDClaim: c.TokenIDClaim, TokenIDOptional: c.TokenIDOptional,
	}
}

// withDefaults validates p's rules, reporting each problem through bad
// prefixed with where, and returns a copy with defaults filled in.
func (p Provider) withDefaults(where string, bad func(format string, args ...any)) Provider {
	if p.Issuer == "" {
		bad("%sIssuer is required", where)
	}
	if len(p.Audiences) == 0 || slices.Contains(p.Audiences, "") {
		bad("%sAudiences is required and must not contain an empty value", where)
	}
	if len(p.Algorithms) == 0 {
		bad("%sAlgorithms is required (an explicit allow-list of %v)", where, supportedAlgorithms)
	}
	for _, a := range p.Algorithms {
		if !slices.Contains(supportedAlgorithms, a) {
			bad("%salgorithm %q not supported (use %v)", where, a, supportedAlgorithms)
		}
	}
	p.Audiences = slices.Clone(p.Audiences)
	p.Algorithms = slices.Clone(p.Algorithms)
	if p.SessionClaim == "" {
		p.SessionClaim = "sid"
	}
	if p.TokenIDClaim == "" {
		p.TokenIDClaim = "jti"
	}
	for _, f := range [...]struct{ field, name string }{{"SessionClaim", p.SessionClaim}, {"TokenIDClaim", p.TokenIDClaim}} {
		if slices.Contains(registeredClaims[:], f.name) {
			bad("%s%s %q is a claim the verifier reads for another purpose", where, f.field, f.name)
		}
	}
	if p.SessionClaim == p.TokenIDClaim {
		bad("%sSessionClaim and TokenIDClaim are both %q: a session id is not a token id", where, p.SessionClaim)
	}
	return p
}

// trust is one trusted issuer's rules, resolved once.
type trust struct {
	Provider
	methods   map[string]jwt.SigningMethod // the allow-list
	validator *jwt.Validator
}

// Checker checks access tokens by their keys and claims alone: size,
// header, key, signature, claims and expiry — no revocation state, no
// stream. A [Verifier] is a Checker plus the revocation state and its feed;
// code that only inspects tokens (an issuer logging a session out, a
// revoker revoking a token it is shown) needs only a Checker.
//
// A Checker is safe for concurrent use.
type Checker struct {
	cfg    CheckerConfig
	trusts []*trust          // the own issuer first, then the providers
	byIss  map[string]*trust // by exact iss
	tokens *tokenCache       // nil when disabled
}

// NewChecker validates cfg and returns a Checker that verifies the own
// issuer's signatures with keys ([StaticKeys], a [JWKS] — run it — or any
// [KeySource]) and each provider's with its own. Every misconfiguration is
// reported here, at once.
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
	k := &Checker{cfg: cfg, byIss: make(map[string]*trust, 1+len(cfg.Providers))}
	for _, p := range append([]Provider{cfg.own(keys)}, cfg.Providers...) {
		t := newTrust(p,
			jwt.WithIssuer(p.Issuer),
			jwt.WithAudience(p.Audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.Leeway),
			jwt.WithTimeFunc(cfg.Now),
		)
		k.trusts = append(k.trusts, t)
		k.byIss[p.Issuer] = t
	}
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

// KeysReady reports whether every trusted issuer's key source can answer
// (see KeySource.Ready): a Checker that cannot check some issuer's tokens
// is not ready, as it would refuse them all.
func (k *Checker) KeysReady() bool {
	for _, t := range k.trusts {
		select {
		case <-t.Keys.Ready():
		default:
			return false
		}
	}
	return true
}

// waitKeys blocks until every key source is ready or ctx ends.
func (k *Checker) waitKeys(ctx context.Context) error {
	for _, t := range k.trusts {
		select {
		case <-t.Keys.Ready():
		case <-ctx.Done():
			return fmt.Errorf("verifier: wait for keys: %w", ctx.Err())
		}
	}
	return nil
}

// Run runs the key sources' background work, for those that have any (a
// [JWKS] keeps itself fresh), until ctx ends; then it returns nil, or the
// first error a key source returned. A [Verifier] runs its Checker itself;
// run a Checker of your own beside the code that uses it.
func (k *Checker) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(k.trusts))
	n := 0
	for _, t := range k.trusts {
		if r, ok := t.Keys.(runner); ok {
			n++
			go func() {
				err := r.Run(ctx)
				if err != nil {
					cancel()
				}
				errc <- err
			}()
		}
	}
	<-ctx.Done()
	var first error
	for range n {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
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
// the claims, with golang-jwt's signing methods and claims validator. With
// several trusted issuers, the iss claim is read first, alone, to choose the
// issuer whose algorithms, keys and claim rules apply; nothing else of the
// claims is read before the signature is verified with that issuer's keys.
func (k *Checker) parse(ctx context.Context, raw string) (*Claims, error) {
	var hbuf [smallObject]member
	header, dot1, dot2, err := splitJWS(raw, hbuf[:])
	if err != nil {
		return nil, err
	}
	t := k.trusts[0]
	var cb []byte // the decoded claims, once decoded
	if len(k.trusts) > 1 {
		if cb, err = segment.DecodeString(raw[dot1+1 : dot2]); err != nil {
			return nil, fail(ErrMalformed, "claims are not base64url")
		}
		if t, err = k.trustOf(cb); err != nil {
			return nil, err
		}
	}
	kid, err := t.verifySignature(ctx, raw, dot2, header, acceptedType, "typ is not at+jwt")
	if err != nil {
		return nil, err
	}
	if cb == nil {
		if cb, err = segment.DecodeString(raw[dot1+1 : dot2]); err != nil {
			return nil, fail(ErrMalformed, "claims are not base64url")
		}
	}
	tc, err := decodeClaims(cb, t.SessionClaim, t.TokenIDClaim, k.cfg.EpochScopes...)
	if err != nil {
		return nil, err
	}
	if err := t.validator.Validate(&tc); err != nil {
		return nil, classifyClaims(err)
	}
	for _, sc := range tc.Scopes {
		if events.ValidValue(events.KindScope, sc.Value) != nil {
			return nil, fail(ErrClaims, sc.Claim+" longer than 256 bytes or not printable")
		}
	}
	// sub, jti and sid must be values a revocation can name (pkg/events
	// owns that rule): a token no logout could reach is refused.
	switch {
	case events.ValidValue(events.KindSubject, tc.Subject) != nil:
		return nil, fail(ErrClaims, "sub missing, longer than 256 bytes or not printable")
	case (tc.ID != "" || !t.TokenIDOptional) && events.ValidValue(events.KindToken, tc.ID) != nil:
		return nil, fail(ErrClaims, t.TokenIDClaim+" missing, longer than 256 bytes or not printable")
	case tc.SessionID != "" && events.ValidValue(events.KindSession, tc.SessionID) != nil:
		return nil, fail(ErrClaims, t.SessionClaim+" longer than 256 bytes or not printable")
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
		Scopes:    tc.Scopes,
		raw:       raw,
	}
	if k.cfg.Validate != nil {
		if err := k.cfg.Validate(c); err != nil {
			return nil, &verifyError{class: ErrInvalidToken, reason: ErrClaims, cause: err}
		}
	}
	return c, nil
}

// splitJWS finds the two dots of raw, a compact JWS, and reads its header
// into buf, each parameter by its exact name (see readObject).
func splitJWS(raw string, buf []member) (header []member, dot1, dot2 int, err error) {
	dot1 = strings.IndexByte(raw, '.')
	if dot1 < 0 {
		return nil, 0, 0, fail(ErrMalformed, "not three segments")
	}
	dot2 = strings.IndexByte(raw[dot1+1:], '.')
	if dot2 < 0 {
		return nil, 0, 0, fail(ErrMalformed, "not three segments")
	}
	dot2 += dot1 + 1
	if strings.IndexByte(raw[dot2+1:], '.') >= 0 {
		return nil, 0, 0, fail(ErrMalformed, "not three segments")
	}
	hb, err := segment.DecodeString(raw[:dot1])
	if err != nil {
		return nil, 0, 0, fail(ErrMalformed, "header is not base64url")
	}
	header, err = readObject(hb, buf)
	if errors.Is(err, errDuplicateName) {
		return nil, 0, 0, fail(ErrMalformed, "a header parameter appears twice")
	}
	if err != nil {
		return nil, 0, 0, fail(ErrMalformed, "header is not a json object")
	}
	return header, dot1, dot2, nil
}

// verifySignature checks the header of raw (split at dot2) by t's rules —
// alg in the allow-list, no refused parameter, a typ that typOK accepts if
// any (typErr says which otherwise), a usable kid — then finds the key and
// verifies the signature. It returns the kid. Nothing of the claims is
// read.
func (t *trust) verifySignature(ctx context.Context, raw string, dot2 int, header []member,
	typOK func([]byte) bool, typErr string) (string, error) {
	alg, _ := stringValue(lookup(header, "alg"))
	method, ok := t.methods[alg]
	if !ok {
		return "", fail(ErrAlgorithm, "")
	}
	if name := refusedParam(header); name != "" {
		return "", fail(ErrHeader, "header "+name+" is refused")
	}
	if typ := lookup(header, "typ"); typ != nil && !typOK(typ) {
		return "", fail(ErrHeader, typErr)
	}
	kid, ok := stringValue(lookup(header, "kid"))
	if !ok || !validKID(kid) {
		return "", fail(ErrHeader, "kid missing or not a short printable string")
	}
	key, err := t.Keys.Key(ctx, kid)
	if errors.Is(err, ErrUnknownKey) {
		return "", fail(ErrUnknownKey, "") // the kid is token content: not echoed
	}
	if err != nil {
		// The key source could not answer (JWKS never fetched, ctx ended):
		// that says nothing about the token.
		return "", &verifyError{class: ErrUnavailable, reason: ErrKeysUnavailable, cause: err}
	}
	if !key.AllowsAlgorithm(alg) {
		return "", fail(ErrAlgorithm, "algorithm does not match the key")
	}
	sig, err := segment.DecodeString(raw[dot2+1:])
	if err != nil {
		return "", fail(ErrMalformed, "signature is not base64url")
	}
	if err := method.Verify(raw[:dot2], sig, key.Public); err != nil {
		return "", fail(ErrSignature, "")
	}
	return kid, nil
}

// newTrust resolves p's allow-list and claims validator.
func newTrust(p Provider, opts ...jwt.ParserOption) *trust {
	t := &trust{Provider: p, methods: make(map[string]jwt.SigningMethod, len(p.Algorithms))}
	for _, alg := range p.Algorithms {
		t.methods[alg] = jwt.GetSigningMethod(alg)
	}
	t.validator = jwt.NewValidator(opts...)
	return t
}

// trustOf returns the trusted issuer that the claims set cb names in iss,
// read by its exact name.
func (k *Checker) trustOf(cb []byte) (*trust, error) {
	var buf [smallObject]member
	members, err := readObject(cb, buf[:])
	if errors.Is(err, errDuplicateName) {
		return nil, fail(ErrMalformed, "a claim appears twice")
	}
	if err != nil {
		return nil, fail(ErrMalformed, "claims are not a valid json object")
	}
	iss, ok := stringValue(lookup(members, "iss"))
	if !ok {
		return nil, fail(ErrClaims, "iss missing or not a string")
	}
	t, ok := k.byIss[iss]
	if !ok {
		return nil, wrap(ErrClaims, ErrWrongIssuer) // token content: not echoed
	}
	return t, nil
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
		return wrap(ErrClaims, ErrWrongIssuer)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return wrap(ErrClaims, ErrWrongAudience)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fail(ErrClaims, "a required claim is missing")
	}
	return fail(ErrClaims, "")
}

// accessTypes are the typ values of an access token (RFC 9068 §2.1, and
// the plain JWT most providers send).
var accessTypes = []string{"at+jwt", "application/at+jwt", "JWT", "jwt"}

func acceptedType(typ []byte) bool { return typeIn(typ, accessTypes) }

// typeIn reports whether the raw typ header value is a string among types.
func typeIn(typ []byte, types []string) bool {
	s, ok := stringValue(typ)
	return ok && slices.Contains(types, s)
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

// CheckEpochScopes reports whether names can be the epoch scopes of a
// verifier (Config.EpochScopes): at most [MaxEpochScopes] claims, each valid
// ([events.ValidClaim]), none listed twice, and not "iss" (every token's
// issuer is a scope already). A revoker and an issuer configured with the
// verifiers' scopes check them with it too.
func CheckEpochScopes(names []string) error {
	var errs []error
	if len(names) > MaxEpochScopes {
		errs = append(errs, fmt.Errorf("EpochScopes lists %d claims, at most %d", len(names), MaxEpochScopes))
	}
	for i, name := range names {
		switch {
		case name == events.ScopeIssuer:
			errs = append(errs, fmt.Errorf("EpochScopes: %q is a scope of every token already (the issuer epoch)", name))
		case slices.Contains(names[:i], name):
			errs = append(errs, fmt.Errorf("EpochScopes: %q is listed twice", name))
		default:
			if err := events.ValidClaim(name); err != nil {
				errs = append(errs, fmt.Errorf("EpochScopes: %s", strings.TrimPrefix(err.Error(), "events: invalid event: ")))
			}
		}
	}
	return errors.Join(errs...)
}
