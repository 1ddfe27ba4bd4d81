package verifier

import (
	"context"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// BackchannelLogoutEvent is the member of a logout token's events claim that
// makes it one (OpenID Connect Back-Channel Logout 1.0 §2.4).
const BackchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Defaults and bounds of [LogoutConfig].
const (
	// DefaultLogoutMaxAge is how old a logout token's iat may be. Providers
	// retry a failed delivery with the identical token (Hydra after about
	// a second, then with backoff), so the window has to outlast a short
	// outage of the receiver.
	DefaultLogoutMaxAge = 10 * time.Minute
	// MaxLogoutMaxAge bounds LogoutConfig.MaxAge: the receiver remembers
	// every accepted jti for that long.
	MaxLogoutMaxAge = 24 * time.Hour
)

// LogoutConfig is what a valid back-channel logout token of one provider
// looks like. [NewLogoutChecker] copies it; zero fields take the documented
// defaults.
type LogoutConfig struct {
	// Issuer is the exact iss of the provider's logout tokens. Required.
	Issuer string
	// ClientID is the client the tokens are addressed to: aud must
	// contain it. Required.
	ClientID string
	// Keys verifies the provider's signatures (its JWKS). Required.
	Keys KeySource
	// Algorithms is the allow-list (EdDSA, ES256, RS256; all asymmetric,
	// as §2.6 requires). Required.
	Algorithms []string
	// MaxAge is how old iat may be; default DefaultLogoutMaxAge, at most
	// MaxLogoutMaxAge. A replay cache must remember accepted jtis at least
	// MaxAge plus twice Leeway ([LogoutChecker.ReplayWindow]).
	MaxAge time.Duration
	// Leeway tolerated on iat and exp for clock skew. Default 5s, at most
	// 1m.
	Leeway time.Duration
	// MaxTokenSize caps the compact token in bytes. Default 8 KiB.
	MaxTokenSize int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// LogoutToken is a verified back-channel logout token: what it logs out.
// At least one of Subject and SessionID is set.
type LogoutToken struct {
	Issuer string
	// Subject is sub, "" when the token names only a session.
	Subject string
	// SessionID is sid, "" when the token names only a subject.
	SessionID string
	// ID is jti: each logout token is accepted once (see
	// [LogoutChecker.ReplayWindow]).
	ID       string
	IssuedAt time.Time
	// ExpiresAt is exp, zero when the token has none (Hydra sends none).
	ExpiresAt time.Time
	KeyID     string
}

// LogoutChecker checks OpenID Connect back-channel logout tokens of one
// provider (Back-Channel Logout 1.0 §2.6): signature by the provider's keys,
// iss exact, aud containing the client id, iat present and recent, exp if
// present not past, the back-channel-logout member in events with an object
// value, sub or sid, no nonce, typ absent, "JWT" or "logout+jwt", and a jti.
// It does not remember jtis: the caller's replay cache does, since it must
// be written in the same step as what the logout records.
//
// A LogoutChecker is safe for concurrent use.
type LogoutChecker struct {
	*signalRules // ReplayWindow, KeysReady
}

// NewLogoutChecker validates cfg and returns a LogoutChecker. Every
// misconfiguration is reported at once.
func NewLogoutChecker(cfg LogoutConfig) (*LogoutChecker, error) {
	r, err := newSignalRules(signalConfig{
		what: "logout", issuer: cfg.Issuer, audience: cfg.ClientID,
		audienceField: "ClientID", hint: "the aud the provider addresses its logout tokens to",
		keys: cfg.Keys, algorithms: cfg.Algorithms, maxAge: cfg.MaxAge, leeway: cfg.Leeway,
		maxSize: cfg.MaxTokenSize, now: cfg.Now, defaultAge: DefaultLogoutMaxAge, defaultSize: DefaultMaxTokenSize,
		types: logoutTypes, typErr: "typ is not logout+jwt or JWT",
	})
	if err != nil {
		return nil, err
	}
	return &LogoutChecker{r}, nil
}

// Check verifies raw, a compact JWS logout token. On any failure it returns
// nil and an error wrapping [ErrInvalidToken] or [ErrUnavailable] (keys not
// available) and one precise reason, as [Checker.Check] does; the texts
// never quote the token.
func (k *LogoutChecker) Check(ctx context.Context, raw string) (*LogoutToken, error) {
	tc, cb, kid, err := k.check(ctx, raw)
	if err != nil {
		return nil, err
	}
	switch {
	case tc.Subject == "" && tc.SessionID == "":
		return nil, fail(ErrClaims, "neither sub nor sid")
	case tc.Subject != "" && events.ValidValue(events.KindSubject, tc.Subject) != nil:
		return nil, fail(ErrClaims, "sub longer than 256 bytes or not printable")
	case tc.SessionID != "" && events.ValidValue(events.KindSession, tc.SessionID) != nil:
		return nil, fail(ErrClaims, "sid longer than 256 bytes or not printable")
	}
	if err := logoutMembers(cb); err != nil {
		return nil, err
	}
	return &LogoutToken{
		Issuer: tc.Issuer, Subject: tc.Subject, SessionID: tc.SessionID, ID: tc.ID,
		IssuedAt: tc.IssuedAt.Time, ExpiresAt: tc.ExpiresAt.Time, KeyID: kid,
	}, nil
}

// logoutMembers checks the claims that tell a logout token from other JWTs
// of the same provider: no nonce (an ID token has one) and an events claim
// holding the back-channel-logout member with an object value.
func logoutMembers(cb []byte) error {
	var buf [smallObject]member
	members, err := readObject(cb, buf[:])
	if err != nil { // decodeClaims read the same bytes
		return fail(ErrMalformed, "claims are not a valid json object")
	}
	if lookup(members, "nonce") != nil {
		return fail(ErrClaims, "a logout token must not carry a nonce")
	}
	raw := lookup(members, "events")
	if raw == nil {
		return fail(ErrClaims, "events missing")
	}
	var ebuf [4]member
	evs, err := readObject(raw, ebuf[:])
	if err != nil {
		return fail(ErrClaims, "events is not a json object")
	}
	v := lookup(evs, BackchannelLogoutEvent)
	if v == nil {
		return fail(ErrClaims, "events has no back-channel logout member")
	}
	if _, err := readObject(v, ebuf[:0]); err != nil {
		return fail(ErrClaims, "the back-channel logout event is not a json object")
	}
	return nil
}

// logoutTypes are the typ values of §2.4: "JWT" (what most providers send,
// Hydra included) or logout+jwt; an absent typ is accepted too.
var logoutTypes = []string{"logout+jwt", "application/logout+jwt", "JWT", "jwt"}
