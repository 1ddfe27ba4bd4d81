package verifiertest

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
)

// JWKSPath is the path the [Issuer]'s JWKS server publishes its keys at.
const JWKSPath = "/.well-known/jwks.json"

// Issuer defaults.
const (
	DefaultIssuer    = "https://issuer.test"
	DefaultAudience  = "api"
	DefaultTTL       = 5 * time.Minute
	DefaultAlgorithm = "EdDSA"
	DefaultSubject   = "alice"
)

// issuerOptions collects [IssuerOption] values.
type issuerOptions struct {
	alg string
	iss string
	aud string
	ttl time.Duration
	now func() time.Time
}

// IssuerOption configures [NewIssuer].
type IssuerOption func(*issuerOptions)

// WithAlgorithm sets the signing algorithm: "EdDSA" (the default), "ES256"
// or "RS256" (2048-bit keys). Rotated keys use the same algorithm.
func WithAlgorithm(alg string) IssuerOption {
	return func(o *issuerOptions) { o.alg = alg }
}

// WithIssuer sets the "iss" claim; the default is [DefaultIssuer].
func WithIssuer(iss string) IssuerOption {
	return func(o *issuerOptions) { o.iss = iss }
}

// WithAudience sets the "aud" claim; the default is [DefaultAudience].
func WithAudience(aud string) IssuerOption {
	return func(o *issuerOptions) { o.aud = aud }
}

// WithTTL sets the default token lifetime; the default is [DefaultTTL].
func WithTTL(d time.Duration) IssuerOption {
	return func(o *issuerOptions) { o.ttl = d }
}

// WithNow sets the clock used for "iat" when a token does not set it; the
// default is time.Now.
func WithNow(now func() time.Time) IssuerOption {
	return func(o *issuerOptions) { o.now = now }
}

// Issuer mints signed access tokens for tests and publishes its public keys
// as a JSON Web Key Set on a loopback HTTP server. It is safe for concurrent
// use. Create one with [NewIssuer].
type Issuer struct {
	alg    string
	method jwt.SigningMethod
	iss    string
	aud    string
	ttl    time.Duration
	now    func() time.Time
	srv    *httptest.Server

	jwksRequests atomic.Int64

	// mu guards current and published.
	mu        sync.RWMutex
	current   signingKey
	published []keyset.Key // every key ever generated, oldest first
}

// signingKey is a private key and its id.
type signingKey struct {
	kid  string
	priv crypto.Signer
}

// NewIssuer generates a signing key with a random kid and starts a JWKS
// server for it, closed at tb's Cleanup. It fails the test on a bad option.
func NewIssuer(tb testing.TB, opts ...IssuerOption) *Issuer {
	tb.Helper()
	o := issuerOptions{alg: DefaultAlgorithm, iss: DefaultIssuer, aud: DefaultAudience, ttl: DefaultTTL, now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	i := &Issuer{alg: o.alg, iss: o.iss, aud: o.aud, ttl: o.ttl, now: o.now}
	switch o.alg {
	case keyset.AlgEdDSA:
		i.method = jwt.SigningMethodEdDSA
	case keyset.AlgES256:
		i.method = jwt.SigningMethodES256
	case keyset.AlgRS256:
		i.method = jwt.SigningMethodRS256
	default:
		tb.Fatalf("verifiertest: unsupported algorithm %q (want EdDSA, ES256 or RS256)", o.alg)
	}
	if i.now == nil {
		tb.Fatal("verifiertest: WithNow(nil)")
	}
	if i.ttl <= 0 {
		tb.Fatalf("verifiertest: WithTTL(%v): want a positive lifetime", i.ttl)
	}
	i.RotateKey(tb)

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+JWKSPath, func(w http.ResponseWriter, _ *http.Request) {
		i.jwksRequests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(i.JWKS())
	})
	i.srv = httptest.NewServer(mux)
	tb.Cleanup(i.srv.Close)
	return i
}

// JWKSURL returns the URL of the issuer's JSON Web Key Set.
func (i *Issuer) JWKSURL() string { return i.srv.URL + JWKSPath }

// JWKSRequests returns how many times the JWKS has been fetched.
func (i *Issuer) JWKSRequests() int64 { return i.jwksRequests.Load() }

// Issuer returns the "iss" value of the tokens.
func (i *Issuer) Issuer() string { return i.iss }

// Audience returns the "aud" value of the tokens.
func (i *Issuer) Audience() string { return i.aud }

// Algorithm returns the JWS algorithm tokens are signed with.
func (i *Issuer) Algorithm() string { return i.alg }

// KeyID returns the kid of the current signing key.
func (i *Issuer) KeyID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.current.kid
}

// PublicKey returns the public half of the current signing key: an
// ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey.
func (i *Issuer) PublicKey() crypto.PublicKey {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.current.priv.Public()
}

// JWKS returns the published key set: every key the issuer has used,
// including rotated-out ones.
func (i *Issuer) JWKS() []byte {
	i.mu.RLock()
	defer i.mu.RUnlock()
	b, err := keyset.MarshalJWKS(i.published...)
	if err != nil {
		// Keys are generated here and always valid.
		panic(fmt.Sprintf("verifiertest: marshal jwks: %v", err))
	}
	return b
}

// RotateKey generates a new signing key with a random kid and publishes it;
// earlier keys stay published so their tokens still verify. It returns the
// new kid. Verifiers holding a cached key set learn the new key on the first
// token naming it (subject to their refresh rate limit).
func (i *Issuer) RotateKey(tb testing.TB) string {
	tb.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch i.alg {
	case keyset.AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case keyset.AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case keyset.AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		tb.Fatalf("verifiertest: generate %s key: %v", i.alg, err)
	}
	k := signingKey{kid: rand.Text(), priv: priv}

	i.mu.Lock()
	defer i.mu.Unlock()
	i.current = k
	i.published = append(i.published, keyset.Key{ID: k.kid, Algorithm: i.alg, Public: priv.Public()})
	return k.kid
}

// TokenOptions shape one token from [Issuer.Token]. Zero fields take the
// defaults given on each.
type TokenOptions struct {
	// Subject is "sub"; default [DefaultSubject].
	Subject string
	// SessionID is "sid"; default random.
	SessionID string
	// JTI is "jti"; default random.
	JTI string
	// IssuedAt is "iat"; default the issuer's clock.
	IssuedAt time.Time
	// TTL sets "exp" to IssuedAt+TTL; default the issuer's TTL. A negative
	// TTL gives a token that is already expired.
	TTL time.Duration
	// Extra claims are added last and override the standard ones; a nil
	// value removes a claim.
	Extra map[string]any
	// Header fields are added last and override "alg", "kid" and "typ"; a
	// nil value removes a field. For hostile-token tests: the signature is
	// always made with the issuer's current key and algorithm.
	Header map[string]any
}

// Token returns a signed access token (JWS compact serialization).
//
// Header: "alg", "kid" (current key), "typ":"at+jwt". Claims: "iss", "sub",
// "aud" (a string), "exp", "iat", "jti", "sid"; no "nbf". "iat" and "exp"
// are JSON numbers with a six-digit fraction (microseconds), so tests can
// place a token and a logout within the same second.
func (i *Issuer) Token(tb testing.TB, o TokenOptions) string {
	tb.Helper()
	iat := i.iatOr(o.IssuedAt)
	ttl := o.TTL
	if ttl == 0 {
		ttl = i.ttl
	}
	claims := map[string]any{
		"iss": i.iss,
		"sub": cmp.Or(o.Subject, DefaultSubject),
		"aud": i.aud,
		"iat": NumericDate(iat),
		"exp": NumericDate(iat.Add(ttl)),
		"jti": cmp.Or(o.JTI, rand.Text()),
		"sid": cmp.Or(o.SessionID, rand.Text()),
	}
	return i.signTyped(tb, "at+jwt", claims, o.Header, o.Extra)
}

// iatOr returns iat, or the issuer's clock when it is zero.
func (i *Issuer) iatOr(iat time.Time) time.Time {
	if iat.IsZero() {
		return i.now()
	}
	return iat
}

// signTyped signs claims with the current key under the header alg, kid
// and typ, after adding extraHeader to the header and extra to the claims
// (a nil value removes a field).
func (i *Issuer) signTyped(tb testing.TB, typ string, claims, extraHeader, extra map[string]any) string {
	tb.Helper()
	i.mu.RLock()
	key := i.current
	i.mu.RUnlock()
	header := map[string]any{"alg": i.alg, "kid": key.kid, "typ": typ}
	mergeFields(header, extraHeader)
	mergeFields(claims, extra)
	return i.sign(tb, key, header, claims)
}

// LogoutOptions shape one back-channel logout token from
// [Issuer.LogoutToken].
type LogoutOptions struct {
	// ClientID is the aud (an array of it, as Hydra sends); default the
	// issuer's audience.
	ClientID string
	// Subject ("sub") and SessionID ("sid"): each left out when empty.
	Subject, SessionID string
	// JTI is "jti"; default random.
	JTI string
	// IssuedAt is "iat"; default the issuer's clock.
	IssuedAt time.Time
	// Extra claims and Header fields are added last, as in [TokenOptions].
	Extra, Header map[string]any
}

// LogoutToken returns a signed OpenID Connect back-channel logout token
// shaped as Ory Hydra v2.3.0 sends one: header "typ":"JWT"; claims "iss",
// "aud" (an array), "iat", "jti", "events" with the back-channel logout
// member, "sid" and/or "sub"; no "exp", no "nonce".
func (i *Issuer) LogoutToken(tb testing.TB, o LogoutOptions) string {
	tb.Helper()
	iat := i.iatOr(o.IssuedAt)
	claims := map[string]any{
		"iss":    i.iss,
		"aud":    []string{cmp.Or(o.ClientID, i.aud)},
		"iat":    NumericDate(iat),
		"jti":    cmp.Or(o.JTI, rand.Text()),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if o.Subject != "" {
		claims["sub"] = o.Subject
	}
	if o.SessionID != "" {
		claims["sid"] = o.SessionID
	}
	return i.signTyped(tb, "JWT", claims, o.Header, o.Extra)
}

// SETOptions shape one Security Event Token from [Issuer.SET].
type SETOptions struct {
	// Audience is "aud" (a string); default the issuer's audience.
	Audience string
	// EventType and Event are the one member of "events"; Event default
	// {}.
	EventType string
	Event     map[string]any
	// SubjectID is "sub_id"; left out when nil.
	SubjectID map[string]any
	// JTI is "jti"; default random. IssuedAt is "iat"; default the
	// issuer's clock.
	JTI      string
	IssuedAt time.Time
	// Extra claims and Header fields are added last, as in [TokenOptions].
	Extra, Header map[string]any
}

// SET returns a signed Security Event Token (RFC 8417) as an OpenID Shared
// Signals transmitter pushes one: header "typ":"secevent+jwt"; claims
// "iss", "aud", "iat", "jti", "events" with one event, and "sub_id" if
// given; no "sub", no "exp".
func (i *Issuer) SET(tb testing.TB, o SETOptions) string {
	tb.Helper()
	iat := i.iatOr(o.IssuedAt)
	ev := o.Event
	if ev == nil {
		ev = map[string]any{}
	}
	claims := map[string]any{
		"iss":    i.iss,
		"aud":    cmp.Or(o.Audience, i.aud),
		"iat":    iat.Unix(),
		"jti":    cmp.Or(o.JTI, rand.Text()),
		"events": map[string]any{o.EventType: ev},
	}
	if o.SubjectID != nil {
		claims["sub_id"] = o.SubjectID
	}
	return i.signTyped(tb, "secevent+jwt", claims, o.Header, o.Extra)
}

// SignRaw signs exactly the given header and claims with the issuer's
// current key and algorithm, adding nothing: for tokens a well-behaved
// issuer would never mint (no kid, "alg":"none" in the header, missing
// claims, and so on).
func (i *Issuer) SignRaw(tb testing.TB, header, claims map[string]any) string {
	tb.Helper()
	i.mu.RLock()
	key := i.current
	i.mu.RUnlock()
	return i.sign(tb, key, header, claims)
}

// sign encodes header and claims and signs them with key.
func (i *Issuer) sign(tb testing.TB, key signingKey, header, claims map[string]any) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatalf("verifiertest: encode header: %v", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		tb.Fatalf("verifiertest: encode claims: %v", err)
	}
	enc := base64.RawURLEncoding
	signingString := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sig, err := i.method.Sign(signingString, key.priv)
	if err != nil {
		tb.Fatalf("verifiertest: sign: %v", err)
	}
	return signingString + "." + enc.EncodeToString(sig)
}

// NumericDate encodes t as a JWT NumericDate with microsecond precision,
// e.g. 1763812854.123456, for use in claims (TokenOptions.Extra, SignRaw).
func NumericDate(t time.Time) json.Number {
	us := t.UnixMicro()
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	return json.Number(fmt.Sprintf("%d.%06d", sec, frac))
}

// mergeFields copies src into dst; a nil value deletes the name from dst.
func mergeFields(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		dst[k] = v
	}
}
