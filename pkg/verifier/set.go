package verifier

import (
	"context"
	"time"
)

// DefaultSETMaxAge is how old a Security Event Token's iat may be. A
// transmitter may hold events while a receiver is unreachable and deliver
// them later, so the window is longer than a logout token's.
const DefaultSETMaxAge = 24 * time.Hour

// SETConfig is what a valid Security Event Token (RFC 8417) of one
// transmitter looks like, for OpenID Shared Signals delivery. [NewSETChecker]
// copies it; zero fields take the documented defaults.
type SETConfig struct {
	// Issuer is the exact iss of the transmitter's SETs. Required.
	Issuer string
	// Audience is this receiver's id at the transmitter: aud must contain
	// it. Required.
	Audience string
	// Keys verifies the transmitter's signatures. Required.
	Keys KeySource
	// Algorithms is the allow-list (EdDSA, ES256, RS256). Required.
	Algorithms []string
	// MaxAge is how old iat may be; default DefaultSETMaxAge, at most
	// MaxLogoutMaxAge. A replay cache must remember jtis for
	// [SETChecker.ReplayWindow].
	MaxAge time.Duration
	// Leeway, MaxTokenSize and Now as in [LogoutConfig]; MaxTokenSize
	// defaults to 16 KiB (a SET carries a subject and event data).
	Leeway       time.Duration
	MaxTokenSize int
	Now          func() time.Time
}

// SET is a verified Security Event Token with exactly one event.
type SET struct {
	Issuer   string
	ID       string // jti
	IssuedAt time.Time
	// EventType is the one member name of events (a URI such as
	// https://schemas.openid.net/secevent/caep/event-type/session-revoked).
	EventType string
	// Event is that member's value, a JSON object, as sent.
	Event []byte
	// SubjectID is the top-level sub_id claim (SSF 1.0), a JSON object as
	// sent; nil when absent (older CAEP events carry "subject" inside the
	// event instead).
	SubjectID []byte
	KeyID     string
}

// SETChecker checks Security Event Tokens of one transmitter: the JWS steps
// of every token here (key by kid, allow-listed asymmetric algorithm, no
// header that names key material), typ secevent+jwt (RFC 8417 §2.3: so no
// other JWT of the transmitter passes as one), iss exact, aud containing
// the receiver, iat present and recent, exp if present not past, a jti, no
// sub claim (SSF 1.0 §4.1.4: the subject is in sub_id), and an events
// claim with exactly one member whose value is an object. It does not
// remember jtis: the caller's replay cache does.
//
// A SETChecker is safe for concurrent use.
type SETChecker struct {
	*signalRules // ReplayWindow, KeysReady
}

// setTypes are the typ values RFC 8417 §2.3 names.
var setTypes = []string{"secevent+jwt", "application/secevent+jwt"}

// NewSETChecker validates cfg and returns a SETChecker.
func NewSETChecker(cfg SETConfig) (*SETChecker, error) {
	r, err := newSignalRules(signalConfig{
		what: "SET", issuer: cfg.Issuer, audience: cfg.Audience,
		audienceField: "Audience", hint: "this receiver's id at the transmitter",
		keys: cfg.Keys, algorithms: cfg.Algorithms, maxAge: cfg.MaxAge, leeway: cfg.Leeway,
		maxSize: cfg.MaxTokenSize, now: cfg.Now, defaultAge: DefaultSETMaxAge, defaultSize: 16 << 10,
		types: setTypes, typRequired: true, typErr: "typ is not secevent+jwt",
	})
	if err != nil {
		return nil, err
	}
	return &SETChecker{r}, nil
}

// Check verifies raw, a compact JWS SET. Errors are as [Checker.Check]'s:
// ErrInvalidToken or ErrUnavailable and one precise reason; [ErrUnknownKey]
// and [ErrSignature] tell a key problem from a claims problem.
func (k *SETChecker) Check(ctx context.Context, raw string) (*SET, error) {
	tc, cb, kid, err := k.check(ctx, raw)
	if err != nil {
		return nil, err
	}
	if tc.Subject != "" {
		return nil, fail(ErrClaims, "a SET must not carry sub (the subject is in sub_id)")
	}
	var buf [smallObject]member
	members, err := readObject(cb, buf[:])
	if err != nil {
		return nil, fail(ErrMalformed, "claims are not a valid json object")
	}
	set := &SET{Issuer: tc.Issuer, ID: tc.ID, IssuedAt: tc.IssuedAt.Time, KeyID: kid}
	if v := lookup(members, "sub_id"); v != nil {
		if _, err := readObject(v, nil); err != nil {
			return nil, fail(ErrClaims, "sub_id is not a json object")
		}
		set.SubjectID = v
	}
	ev := lookup(members, "events")
	if ev == nil {
		return nil, fail(ErrClaims, "events missing")
	}
	var ebuf [2]member
	evs, err := readObject(ev, ebuf[:])
	if err != nil {
		return nil, fail(ErrClaims, "events is not a json object")
	}
	if len(evs) != 1 {
		return nil, fail(ErrClaims, "events must hold exactly one event")
	}
	if _, err := readObject(evs[0].value, nil); err != nil {
		return nil, fail(ErrClaims, "the event is not a json object")
	}
	set.EventType, set.Event = string(evs[0].name), evs[0].value
	return set, nil
}
