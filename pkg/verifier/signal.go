package verifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// signalRules are what a back-channel logout token and a Security Event
// Token are checked by alike: the JWS steps of every token here, iss
// exact, aud containing the receiver, iat present and within maxAge, exp
// if present not past, and a jti; typ from types (required when
// typRequired). Each checker adds the rules of its own claims.
type signalRules struct {
	trust       *trust
	keys        KeySource
	maxAge      time.Duration
	leeway      time.Duration
	maxSize     int
	now         func() time.Time
	types       []string
	typRequired bool
	typErr      string
}

// signalConfig is the configuration both checkers take, with the defaults
// of the one building it.
type signalConfig struct {
	what                string // "logout", "SET": error prefix
	issuer, audience    string
	audienceField, hint string // "ClientID", what it is
	keys                KeySource
	algorithms          []string
	maxAge, leeway      time.Duration
	maxSize             int
	now                 func() time.Time
	defaultAge          time.Duration
	defaultSize         int
	types               []string
	typRequired         bool
	typErr              string
}

// newSignalRules validates c, reporting every problem at once.
func newSignalRules(c signalConfig) (*signalRules, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("verifier: "+c.what+" config: "+format, args...))
	}
	if c.keys == nil {
		bad("Keys is required: StaticKeys, NewJWKS or your own KeySource")
	}
	if c.audience == "" {
		bad("%s is required: %s", c.audienceField, c.hint)
	}
	p := Provider{Issuer: c.issuer, Keys: c.keys, Audiences: []string{c.audience}, Algorithms: c.algorithms}
	p = p.withDefaults("", bad)
	r := &signalRules{keys: c.keys, maxAge: c.maxAge, leeway: c.leeway, maxSize: c.maxSize, now: c.now,
		types: c.types, typRequired: c.typRequired, typErr: c.typErr}
	if r.maxAge == 0 {
		r.maxAge = c.defaultAge
	}
	if r.maxAge < 0 || r.maxAge > MaxLogoutMaxAge {
		bad("MaxAge %s not in (0, %s]", r.maxAge, MaxLogoutMaxAge)
	}
	if r.leeway == 0 {
		r.leeway = DefaultLeeway
	}
	if r.leeway < 0 || r.leeway > MaxLeeway {
		bad("Leeway %s not in (0, %s]", r.leeway, MaxLeeway)
	}
	if r.maxSize == 0 {
		r.maxSize = c.defaultSize
	}
	if r.maxSize < 256 || r.maxSize > 1<<20 {
		bad("MaxTokenSize %d not in [256, 1MiB]", r.maxSize)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.trust = newTrust(p, jwt.WithIssuer(p.Issuer), jwt.WithAudience(c.audience), jwt.WithIssuedAt(),
		jwt.WithLeeway(r.leeway), jwt.WithTimeFunc(r.now))
	return r, nil
}

// check verifies raw by the shared rules and returns its registered claims
// (sid and jti read under those names), the decoded claims set for the
// checker's own rules, and the kid.
func (r *signalRules) check(ctx context.Context, raw string) (tokenClaims, []byte, string, error) {
	var tc tokenClaims
	if raw == "" {
		return tc, nil, "", fail(ErrMalformed, "empty token")
	}
	if len(raw) > r.maxSize {
		return tc, nil, "", fail(ErrMalformed, "token larger than the size limit")
	}
	var hbuf [smallObject]member
	header, dot1, dot2, err := splitJWS(raw, hbuf[:])
	if err != nil {
		return tc, nil, "", err
	}
	if r.typRequired && lookup(header, "typ") == nil {
		return tc, nil, "", fail(ErrHeader, r.typErr)
	}
	kid, err := r.trust.verifySignature(ctx, raw, dot2, header, func(typ []byte) bool { return typeIn(typ, r.types) }, r.typErr)
	if err != nil {
		return tc, nil, "", err
	}
	cb, err := segment.DecodeString(raw[dot1+1 : dot2])
	if err != nil {
		return tc, nil, "", fail(ErrMalformed, "claims are not base64url")
	}
	if tc, err = decodeClaims(cb, "sid", "jti"); err != nil {
		return tc, nil, "", err
	}
	if err := r.trust.validator.Validate(&tc); err != nil {
		return tc, nil, "", classifyClaims(err)
	}
	switch {
	case tc.IssuedAt.IsZero():
		return tc, nil, "", fail(ErrClaims, "iat missing")
	case tc.IssuedAt.Add(r.maxAge + r.leeway).Before(r.now()):
		return tc, nil, "", fail(ErrExpired, "iat older than the accepted window")
	case events.ValidValue(events.KindToken, tc.ID) != nil:
		return tc, nil, "", fail(ErrClaims, "jti missing, longer than 256 bytes or not printable")
	}
	return tc, cb, kid, nil
}

// ReplayWindow is how long an accepted jti must be remembered so that no
// replay can be accepted: a token older than MaxAge (plus leeway) is refused
// anyway.
func (r *signalRules) ReplayWindow() time.Duration { return r.maxAge + 2*r.leeway }

// KeysReady reports whether the sender's key source can answer.
func (r *signalRules) KeysReady() bool {
	select {
	case <-r.keys.Ready():
		return true
	default:
		return false
	}
}
