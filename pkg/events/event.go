package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"
)

// Version is the version of the wire format this package writes and the
// newest it reads. A consumer refuses an event whose version it does not
// know (see [ErrUnsupportedVersion]).
const Version = 1

// Limits of the wire format. An event beyond any of them is refused by
// [Decode] and [Event.Validate].
const (
	// MaxEventSize is the largest encoded event, in bytes. The stream's
	// MaxMsgSize is set from it (see [StreamConfig]).
	MaxEventSize = 4096
	// MaxIDLen is the longest event id, in bytes.
	MaxIDLen = 128
	// MaxValueLen is the longest jti, sid, sub, kid or scope value, in
	// bytes.
	MaxValueLen = 256
	// MaxClaimLen is the longest claim name of an epoch scope, in bytes.
	MaxClaimLen = 128
	// MaxTextLen is the longest reason or initiator, in bytes.
	MaxTextLen = 256
	// MaxFutureSkew is how far after its issued_at instant a subject's
	// epoch may lie. A larger epoch would lock a subject out for a time
	// nobody asked for, so it is refused as absurd.
	MaxFutureSkew = time.Minute
)

// Times outside [minTime, maxTime) are absurd for this system: refused.
var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Kind says what an event revokes.
type Kind string

// The kinds of revocation. Each names the field that identifies what is
// revoked; see the package documentation for the JSON of each.
const (
	// KindToken revokes one access token by its jti, until the token's exp.
	KindToken Kind = "token"
	// KindSession revokes every token that carries the sid.
	KindSession Kind = "session"
	// KindSubject logs a subject out everywhere: every token of the sub
	// whose iat is not after the epoch is revoked.
	KindSubject Kind = "subject"
	// KindKey revokes a signing key: every token whose header names the kid.
	KindKey Kind = "key"
	// KindScope is an epoch scope beyond the subject: every token whose
	// claim (Claim: "client_id", a tenant claim, "email"; "iss" for every
	// token of an issuer) has the value and whose iat is not after the
	// epoch is revoked.
	KindScope Kind = "scope"
)

// Kinds lists every kind this version knows, in a stable order.
func Kinds() []Kind { return []Kind{KindToken, KindSession, KindSubject, KindKey, KindScope} }

// ScopeIssuer is the claim of the epoch scope of a whole issuer: a scope
// event with it revokes every token whose iss is the value (see
// [NewIssuerEpoch]).
const ScopeIssuer = "iss"

// Errors returned by [Decode] and [Event.Validate]. Every one of them wraps
// [ErrInvalid], so a caller that only needs "good or bad" tests that.
var (
	ErrInvalid            = errors.New("events: invalid event")
	ErrTooLarge           = fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxEventSize)
	ErrMalformed          = fmt.Errorf("%w: malformed json", ErrInvalid)
	ErrUnsupportedVersion = fmt.Errorf("%w: unsupported version", ErrInvalid)
	ErrUnknownKind        = fmt.Errorf("%w: unknown kind", ErrInvalid)
	ErrMissingField       = fmt.Errorf("%w: missing field", ErrInvalid)
	ErrUnexpectedField    = fmt.Errorf("%w: field not allowed for this kind", ErrInvalid)
	ErrBadValue           = fmt.Errorf("%w: bad value", ErrInvalid)
	ErrBadTime            = fmt.Errorf("%w: absurd time", ErrInvalid)
)

// Event is one revocation. Exactly the fields its [Kind] names are set (see
// the package documentation); [New...] constructors fill them correctly.
//
// Events are values: applying the same event twice, or a set of events in any
// order, yields the same restriction (union of revoked ids, maximum of epochs).
type Event struct {
	// Version of the wire format; [Version] when written by this package.
	Version int `json:"v"`
	// ID identifies the event; publishers set it as the Nats-Msg-Id so a
	// retried publish is stored once. 1 to [MaxIDLen] bytes of
	// [A-Za-z0-9._:-].
	ID string `json:"id"`
	// Kind says what is revoked.
	Kind Kind `json:"kind"`
	// IssuedAt is when the revocation was decided (the revoker's clock).
	IssuedAt time.Time `json:"issued_at"`

	// JTI of the revoked token (KindToken).
	JTI string `json:"jti,omitempty"`
	// Expiry of the revoked token (KindToken): the restriction matters until
	// then plus the verifiers' leeway.
	Expiry time.Time `json:"exp,omitzero"`
	// SID of the revoked session (KindSession).
	SID string `json:"sid,omitempty"`
	// Sub is the subject logged out (KindSubject).
	Sub string `json:"sub,omitempty"`
	// Epoch of the logout (KindSubject, KindScope): tokens of Subject (or
	// of the scope) issued at or before it are revoked, tokens issued
	// after it are not. Nanosecond precision.
	Epoch time.Time `json:"epoch,omitzero"`
	// KID of the revoked signing key (KindKey).
	KID string `json:"kid,omitempty"`
	// Claim and ScopeValue name an epoch scope (KindScope): the tokens
	// whose claim Claim, read by its exact name, is the string
	// ScopeValue.
	Claim      string `json:"claim,omitempty"`
	ScopeValue string `json:"value,omitempty"`
	// Issuer, when set, scopes the revocation to the tokens of that issuer
	// (their iss claim, compared exactly): a session, subject, token or key
	// of another issuer with the same identifier is not affected. Empty, the
	// revocation applies to the tokens of every issuer (see [Event.Restricts]).
	Issuer string `json:"iss,omitempty"`

	// Reason is an optional short machine-readable cause ("logout",
	// "refresh_reuse", "compromised"); verifiers may report it.
	Reason string `json:"reason,omitempty"`
	// Initiator optionally names who asked for the revocation.
	Initiator string `json:"initiator,omitempty"`
}

// NewToken returns an event revoking the token with the given jti, which
// expires at exp.
func NewToken(id, jti string, exp, issuedAt time.Time) Event {
	return Event{Version: Version, ID: id, Kind: KindToken, IssuedAt: issuedAt.UTC(), JTI: jti, Expiry: exp.UTC()}
}

// NewSession returns an event revoking every token of session sid.
func NewSession(id, sid string, issuedAt time.Time) Event {
	return Event{Version: Version, ID: id, Kind: KindSession, IssuedAt: issuedAt.UTC(), SID: sid}
}

// NewSubject returns an event revoking every token of sub issued at or before
// epoch.
func NewSubject(id, sub string, epoch, issuedAt time.Time) Event {
	return Event{Version: Version, ID: id, Kind: KindSubject, IssuedAt: issuedAt.UTC(), Sub: sub, Epoch: epoch.UTC()}
}

// NewKey returns an event revoking the signing key kid.
func NewKey(id, kid string, issuedAt time.Time) Event {
	return Event{Version: Version, ID: id, Kind: KindKey, IssuedAt: issuedAt.UTC(), KID: kid}
}

// NewScope returns an event revoking every token whose claim is value and
// whose iat is not after epoch.
func NewScope(id, claim, value string, epoch, issuedAt time.Time) Event {
	return Event{Version: Version, ID: id, Kind: KindScope, IssuedAt: issuedAt.UTC(), Claim: claim, ScopeValue: value, Epoch: epoch.UTC()}
}

// NewIssuerEpoch returns an event revoking every token of issuer iss issued
// at or before epoch: incident response, one event instead of one per
// subject. It is the scope of the claim [ScopeIssuer].
func NewIssuerEpoch(id, iss string, epoch, issuedAt time.Time) Event {
	return NewScope(id, ScopeIssuer, iss, epoch, issuedAt)
}

// Value returns the identifier the event revokes: its jti, sid, sub or kid.
func (e Event) Value() string {
	switch e.Kind {
	case KindToken:
		return e.JTI
	case KindSession:
		return e.SID
	case KindSubject:
		return e.Sub
	case KindKey:
		return e.KID
	case KindScope:
		return e.ScopeValue
	}
	return ""
}

// Reissued returns e as published again at now: IssuedAt moves to now when
// that is later, so that a republished event (a retried request, an outbox
// drain) never holds its restriction for less time than a fresh one would
// (a session's hold runs from IssuedAt; see [Event.HoldUntil]). The id, the
// kind, the identifier, exp and epoch stay: what is revoked does not grow.
func (e Event) Reissued(now time.Time) Event {
	if now.After(e.IssuedAt) {
		e.IssuedAt = now.UTC()
	}
	return e
}

// Equal reports whether e and o describe the same event, comparing times as
// instants.
func (e Event) Equal(o Event) bool {
	return e.Version == o.Version && e.ID == o.ID && e.Kind == o.Kind &&
		e.IssuedAt.Equal(o.IssuedAt) && e.JTI == o.JTI && e.Expiry.Equal(o.Expiry) &&
		e.SID == o.SID && e.Sub == o.Sub && e.Epoch.Equal(o.Epoch) &&
		e.KID == o.KID && e.Claim == o.Claim && e.ScopeValue == o.ScopeValue &&
		e.Issuer == o.Issuer && e.Reason == o.Reason && e.Initiator == o.Initiator
}

// ForIssuer returns e scoped to the tokens of issuer iss ([Event.Issuer]).
func (e Event) ForIssuer(iss string) Event {
	e.Issuer = iss
	return e
}

// Validate checks e against the contract: known version and kind, exactly
// the fields the kind needs, values within the limits, sane times. The error
// wraps [ErrInvalid] and one of the more precise sentinels.
func (e Event) Validate() error {
	if e.Version != Version {
		return fmt.Errorf("%w: %d", ErrUnsupportedVersion, e.Version)
	}
	if err := checkID(e.ID); err != nil {
		return err
	}
	if err := checkTime("issued_at", e.IssuedAt); err != nil {
		return err
	}
	var field string
	switch e.Kind {
	case KindToken:
		field = "jti"
		if err := checkTime("exp", e.Expiry); err != nil {
			return err
		}
	case KindSession:
		field = "sid"
	case KindSubject:
		field = "sub"
		if err := checkTime("epoch", e.Epoch); err != nil {
			return err
		}
		if e.Epoch.After(e.IssuedAt.Add(MaxFutureSkew)) {
			return fmt.Errorf("%w: epoch more than %s after issued_at", ErrBadTime, MaxFutureSkew)
		}
	case KindKey:
		field = "kid"
	case KindScope:
		field = "value"
		if err := ValidClaim(e.Claim); err != nil {
			return err
		}
		if err := checkTime("epoch", e.Epoch); err != nil {
			return err
		}
		if e.Epoch.After(e.IssuedAt.Add(MaxFutureSkew)) {
			return fmt.Errorf("%w: epoch more than %s after issued_at", ErrBadTime, MaxFutureSkew)
		}
		if e.Claim == ScopeIssuer && e.Issuer != "" {
			// The scope already is one issuer's tokens.
			return fmt.Errorf("%w: iss in a scope event of the claim iss", ErrUnexpectedField)
		}
	case "":
		return fmt.Errorf("%w: kind", ErrMissingField)
	default:
		return ErrUnknownKind
	}
	// A kind carries exactly its own fields.
	for _, f := range [...]struct {
		name  string
		stray bool
	}{
		{"jti", e.JTI != "" && field != "jti"},
		{"sid", e.SID != "" && field != "sid"},
		{"sub", e.Sub != "" && field != "sub"},
		{"kid", e.KID != "" && field != "kid"},
		{"value", e.ScopeValue != "" && field != "value"},
		{"claim", e.Claim != "" && e.Kind != KindScope},
		{"exp", !e.Expiry.IsZero() && e.Kind != KindToken},
		{"epoch", !e.Epoch.IsZero() && e.Kind != KindSubject && e.Kind != KindScope},
	} {
		if f.stray {
			return fmt.Errorf("%w: %s in a %s event", ErrUnexpectedField, f.name, e.Kind)
		}
	}
	if err := ValidValue(e.Kind, e.Value()); err != nil {
		return err
	}
	if err := validIssuer(e.Issuer); err != nil {
		return err
	}
	if err := checkText("reason", e.Reason); err != nil {
		return err
	}
	return checkText("initiator", e.Initiator)
}

func checkID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: id", ErrMissingField)
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("%w: id longer than %d bytes", ErrBadValue, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return fmt.Errorf("%w: id has a character outside [A-Za-z0-9._:-]", ErrBadValue)
		}
	}
	return nil
}

// ValidValue reports whether v can be the identifier an event of kind k
// revokes (its jti, sid, sub or kid): 1 to [MaxValueLen] bytes of UTF-8
// without control characters. Issuers and verifiers call it so that no
// token carries an identifier a revocation could not name. The error wraps
// [ErrMissingField] for an empty v, [ErrBadValue] otherwise, or
// [ErrUnknownKind]; it never quotes v.
func ValidValue(k Kind, v string) error {
	name, ok := valueField[k]
	if !ok {
		return ErrUnknownKind
	}
	if v == "" {
		return fmt.Errorf("%w: %s", ErrMissingField, name)
	}
	if len(v) > MaxValueLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrBadValue, name, MaxValueLen)
	}
	return checkPrintable(name, v)
}

// valueField names the field that carries a kind's identifier.
var valueField = map[Kind]string{KindToken: "jti", KindSession: "sid", KindSubject: "sub", KindKey: "kid", KindScope: "value"}

// notScopes are the claims that cannot name an epoch scope: the subject
// has its own kind, a token's and a session's ids are revoked by
// membership, and the times and the audience are no identities.
var notScopes = map[string]string{
	"sub": "use a subject revocation", "jti": "use a token revocation", "sid": "use a session revocation",
	"exp": "a time", "iat": "a time", "nbf": "a time", "aud": "an audience is no identity",
}

// ValidClaim reports whether name can be the claim of an epoch scope: 1 to
// [MaxClaimLen] bytes of UTF-8 without control characters, and not one of
// sub, jti, sid (they have their own kinds), exp, iat, nbf or aud. "iss"
// is the scope of a whole issuer ([ScopeIssuer]).
func ValidClaim(name string) error {
	if name == "" {
		return fmt.Errorf("%w: claim", ErrMissingField)
	}
	if len(name) > MaxClaimLen {
		return fmt.Errorf("%w: claim longer than %d bytes", ErrBadValue, MaxClaimLen)
	}
	if why, ok := notScopes[name]; ok {
		return fmt.Errorf("%w: claim %s cannot be an epoch scope (%s)", ErrBadValue, name, why)
	}
	return checkPrintable("claim", name)
}

// validIssuer checks an event's optional issuer: absent, or 1 to
// [MaxValueLen] bytes of UTF-8 without control characters.
func validIssuer(iss string) error {
	if len(iss) > MaxValueLen {
		return fmt.Errorf("%w: iss longer than %d bytes", ErrBadValue, MaxValueLen)
	}
	return checkPrintable("iss", iss)
}

func checkText(name, v string) error {
	if len(v) > MaxTextLen {
		return fmt.Errorf("%w: %s longer than %d bytes", ErrBadValue, name, MaxTextLen)
	}
	return checkPrintable(name, v)
}

func checkPrintable(name, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%w: %s is not valid utf-8", ErrBadValue, name)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s has a control character", ErrBadValue, name)
		}
	}
	return nil
}

func checkTime(name string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%w: %s", ErrMissingField, name)
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return fmt.Errorf("%w: %s outside [%d, %d)", ErrBadTime, name, minTime.Year(), maxTime.Year())
	}
	return nil
}

// Encode validates e and returns its wire form: compact JSON, times in UTC
// as RFC 3339 with nanoseconds. It is [NewEncoded] without the event.
func Encode(e Event) ([]byte, error) {
	x, err := NewEncoded(e)
	if err != nil {
		return nil, err
	}
	return x.raw, nil
}

// Encoded is an event together with its wire form, validated once and
// encoded once: [NewEncoded] and [DecodeEncoded] are the only ways to make
// one, so whoever holds an Encoded holds an event that passed
// [Event.Validate] and the exact bytes [Encode] writes for it (or, from
// DecodeEncoded, the bytes it was read from). Code that stores, publishes
// or compares an event takes an Encoded and neither validates nor encodes
// it again ([Publisher.PublishEncoded], [NewMsg]).
//
// The zero Encoded holds no event; every function taking an Encoded
// refuses it with an error wrapping [ErrInvalid]. An Encoded is a value,
// safe for concurrent use as long as nobody modifies the slice [Encoded.Bytes]
// returns.
type Encoded struct {
	ev  Event  // times in UTC, as raw says
	raw []byte // never modified once set
}

// errNotEncoded is the error of a function given the zero Encoded.
var errNotEncoded = fmt.Errorf("%w: no event (the zero Encoded)", ErrInvalid)

// NewEncoded validates e ([Event.Validate]) and encodes it, once: compact
// JSON, times in UTC as RFC 3339 with nanoseconds, at most [MaxEventSize]
// bytes. The error wraps [ErrInvalid].
func NewEncoded(e Event) (Encoded, error) {
	if err := e.Validate(); err != nil {
		return Encoded{}, err
	}
	return marshal(e)
}

// DecodeEncoded is [Decode] keeping b as the event's wire form: for bytes
// read back from where they were stored, so that they can be published or
// compared without encoding the event again. b must not be modified
// afterwards.
func DecodeEncoded(b []byte) (Encoded, error) {
	e, err := Decode(b)
	if err != nil {
		return Encoded{}, err
	}
	return Encoded{ev: e, raw: b}, nil
}

// marshal encodes a validated event.
func marshal(e Event) (Encoded, error) {
	e.IssuedAt, e.Expiry, e.Epoch = utc(e.IssuedAt), utc(e.Expiry), utc(e.Epoch)
	b, err := json.Marshal(e)
	if err != nil {
		return Encoded{}, fmt.Errorf("events: encode: %w", err)
	}
	if len(b) > MaxEventSize {
		return Encoded{}, ErrTooLarge
	}
	return Encoded{ev: e, raw: b}, nil
}

// Event returns the event (a copy: changing it changes nothing here).
func (x Encoded) Event() Event { return x.ev }

// Bytes returns the event's wire form. The caller MUST NOT modify it: it is
// shared with every copy of x.
func (x Encoded) Bytes() []byte { return x.raw }

// String returns the wire form as text, for logs and test failures.
func (x Encoded) String() string { return string(x.raw) }

// IsZero reports whether x is the zero Encoded, which holds no event.
func (x Encoded) IsZero() bool { return x.raw == nil }

// Reissued returns the encoding of [Event.Reissued]: x itself when
// issued_at does not move (now is not later), else the event with
// issued_at now, encoded once. Only issued_at changes, and only to a later
// instant, which no rule of [Event.Validate] refuses except the range every
// time must lie in: that is the one check made again.
func (x Encoded) Reissued(now time.Time) (Encoded, error) {
	if x.IsZero() {
		return Encoded{}, errNotEncoded
	}
	e := x.ev.Reissued(now)
	if e.IssuedAt.Equal(x.ev.IssuedAt) {
		return x, nil
	}
	if err := checkTime("issued_at", e.IssuedAt); err != nil {
		return Encoded{}, err
	}
	return marshal(e)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}
