package events

import (
	"errors"
	"time"
)

// The reasons a token is rejected by a revocation, one per [Kind] (see
// [Kind.ErrRevoked]). Every place that decides (a verifier's memory, the
// revoker's Redis records, introspection) returns an error wrapping one of
// them, and pkg/verifier exports the same values. They are the verifier's
// reasons, so their texts carry its prefix.
var (
	// ErrTokenRevoked: the token's jti is revoked.
	ErrTokenRevoked = errors.New("verifier: token revoked")
	// ErrSessionRevoked: the token's session (sid) is revoked.
	ErrSessionRevoked = errors.New("verifier: session revoked")
	// ErrSubjectRevoked: the token's subject logged out at or after the
	// token's issue instant.
	ErrSubjectRevoked = errors.New("verifier: subject logged out")
	// ErrKeyRevoked: the key that signed the token (kid) is revoked.
	ErrKeyRevoked = errors.New("verifier: signing key revoked")
	// ErrScopeRevoked: an epoch scope the token carries (a claim's value,
	// or its issuer) was logged out at or after the token's issue instant.
	ErrScopeRevoked = errors.New("verifier: scope logged out")
)

// RevokedBy returns the revocation reason err wraps (the [Kind.ErrRevoked]
// of some kind), or nil when err is no revocation: the one test of "was this
// token refused as revoked" for code that gets errors from a look-up.
func RevokedBy(err error) error {
	for _, k := range Kinds() {
		if r := k.ErrRevoked(); errors.Is(err, r) {
			return r
		}
	}
	return nil
}

// ErrRevoked returns the reason a token restricted by an event of kind k is
// rejected with; nil for a kind this version does not know.
func (k Kind) ErrRevoked() error {
	switch k {
	case KindToken:
		return ErrTokenRevoked
	case KindSession:
		return ErrSessionRevoked
	case KindSubject:
		return ErrSubjectRevoked
	case KindKey:
		return ErrKeyRevoked
	case KindScope:
		return ErrScopeRevoked
	}
	return nil
}

// Token is what the rules look at in a token whose signature and claims
// were already verified: its identifiers, its issuer and its issue instant.
// An empty identifier is never restricted.
type Token struct {
	JTI, SID, Sub, KID string
	// Iss is the token's iss claim: an event scoped to an issuer
	// ([Event.Issuer]) restricts only tokens whose Iss equals it.
	Iss string
	// IssuedAt is the token's iat, compared with a subject's epoch to the
	// nanosecond (see [EpochRevokes]).
	IssuedAt time.Time
	// Scopes are the token's values of the claims configured as epoch
	// scopes (string claims only); its issuer is the scope [ScopeIssuer]
	// without being listed.
	Scopes []ScopeClaim
}

// ScopeClaim is one claim of a token that is an epoch scope, and its value.
type ScopeClaim struct{ Claim, Value string }

// ScopeValue returns the token's value of the epoch scope claim: its iss
// for [ScopeIssuer], else the value listed in Scopes; "" when it has none.
func (t Token) ScopeValue(claim string) string {
	if claim == ScopeIssuer {
		return t.Iss
	}
	for _, s := range t.Scopes {
		if s.Claim == claim {
			return s.Value
		}
	}
	return ""
}

// EpochRevokes reports whether a token issued at iat is revoked by a logout
// epoch: when iat is not after the epoch (iat <= epoch; a token minted in
// the same nanosecond as the logout predates it). A zero iat cannot prove
// that the token is newer, so it is revoked too. This is the one epoch
// comparison: every epoch scope uses it, against the largest epoch among
// the scopes a token carries.
func EpochRevokes(iat, epoch time.Time) bool {
	return iat.IsZero() || !iat.After(epoch)
}

// Restricts returns the reason t is rejected by e ([Kind.ErrRevoked] of e's
// kind), or nil if e does not restrict t. Membership for a token, session
// or key event: t names e's jti, sid or kid. Epoch for a subject or scope
// event: t has e's sub (or e's claim with e's value) and [EpochRevokes]
// its iat. A consumer that holds several epochs for a token compares its
// iat once, with the largest ([EpochRevokes]); that is the same answer. An event with an issuer restricts
// only tokens of that issuer; one without restricts the tokens of every
// issuer. Whether e is still held (see [Event.HoldUntil]) is the consumer's
// business.
func (e Event) Restricts(t Token) error {
	if e.Issuer != "" && e.Issuer != t.Iss {
		return nil
	}
	var hit bool
	switch e.Kind {
	case KindToken:
		hit = t.JTI != "" && t.JTI == e.JTI
	case KindSession:
		hit = t.SID != "" && t.SID == e.SID
	case KindSubject:
		hit = t.Sub != "" && t.Sub == e.Sub && EpochRevokes(t.IssuedAt, e.Epoch)
	case KindKey:
		hit = t.KID != "" && t.KID == e.KID
	case KindScope:
		v := t.ScopeValue(e.Claim)
		hit = v != "" && v == e.ScopeValue && EpochRevokes(t.IssuedAt, e.Epoch)
	}
	if !hit {
		return nil
	}
	return e.Kind.ErrRevoked()
}

// Bound returns the instant that orders e among events revoking the same
// thing: the token's exp, the session revocation's issued_at, the subject's
// epoch; zero for a key, revoked for ever by every one of its events. Of two
// such events, the one with the later bound restricts at least as much and
// is held at least as long ([Event.HoldUntil] never decreases with the
// bound); [Merge] and [Event.Covers] decide by it.
func (e Event) Bound() time.Time {
	b, _ := e.bound()
	return b
}

// bound is [Event.Bound], and whether e's kind has a merge rule.
func (e Event) bound() (time.Time, bool) {
	switch e.Kind {
	case KindToken:
		return e.Expiry, true
	case KindSession:
		return e.IssuedAt, true
	case KindSubject, KindScope:
		return e.Epoch, true
	case KindKey:
		return time.Time{}, true
	}
	return time.Time{}, false
}

// Rank is what decides a merge of two events revoking the same thing: the
// [Event.Bound] of each and its reason. A consumer that keeps only these of
// a merged event (as a verifier's memory does) merges with [Rank.Compare].
type Rank struct {
	Bound  time.Time
	Reason string
}

// Rank returns e's rank in a merge.
func (e Event) Rank() Rank { return Rank{Bound: e.Bound(), Reason: e.Reason} }

// Compare orders two ranks of events revoking the same thing: +1 if r's
// event is the merge of the two (its restriction and reason are kept), -1 if
// o's is, 0 if they rank alike (they restrict alike and carry the same
// reason). The later bound wins; on equal bounds a non-empty reason, then
// the lexically smaller one. The order is total, so merging by it is
// commutative, associative and idempotent.
func (r Rank) Compare(o Rank) int {
	if c := r.Bound.Compare(o.Bound); c != 0 {
		return c
	}
	switch {
	case r.Reason == o.Reason:
		return 0
	case o.Reason == "":
		return 1
	case r.Reason == "":
		return -1
	case r.Reason < o.Reason:
		return 1
	}
	return -1
}

// Merge returns one event that restricts everything a and b restrict, for
// two events revoking the same thing (the same kind, identifier and issuer): the
// union of revoked ids, the latest epoch, the longest hold. That is the one
// that ranks first ([Rank.Compare]); a when they rank alike, or when they
// revoke different things (nothing to merge).
func Merge(a, b Event) Event {
	if !sameTarget(a, b) || a.Rank().Compare(b.Rank()) >= 0 {
		return a
	}
	return b
}

// Covers reports whether e restricts at least everything o restricts, which
// is when merging o into e keeps e's restriction: the same kind, identifier
// and issuer, and a bound at least as late (a later or equal expiry for a
// token, a later or equal issue for a session, a later or equal epoch for a
// subject; a key is revoked for ever either way).
func (e Event) Covers(o Event) bool {
	return sameTarget(e, o) && !e.Bound().Before(o.Bound())
}

// sameTarget reports whether a and b revoke the same thing: the same kind,
// identifier and issuer scope. An issuer-scoped event and an unscoped one
// are different things (each is kept and published on its own subject).
func sameTarget(a, b Event) bool {
	return a.Kind == b.Kind && a.Claim == b.Claim && a.Value() == b.Value() && a.Issuer == b.Issuer
}

// HoldUntil returns until when a consumer must keep the restriction of e, for
// tokens whose lifetime is at most maxTokenLifetime checked with leeway; the
// zero time means forever.
//
//   - token: until the token's exp plus leeway;
//   - session: until issued_at + maxTokenLifetime + leeway + [MaxFutureSkew]
//     (no token of the session minted before the revocation lives longer; the
//     skew covers a refresh that raced the revocation on another clock);
//   - subject, scope: until epoch + maxTokenLifetime + leeway (a token
//     issued at or before the epoch expires by then);
//   - key: forever (whoever holds a leaked key can forge any iat).
//
// An event of a kind this version does not know is held forever.
func (e Event) HoldUntil(maxTokenLifetime, leeway time.Duration) time.Time {
	h, _ := e.holdUntil(maxTokenLifetime, leeway)
	return h
}

// holdUntil is [Event.HoldUntil], and whether e's kind has a hold rule.
func (e Event) holdUntil(maxTokenLifetime, leeway time.Duration) (time.Time, bool) {
	switch e.Kind {
	case KindToken:
		return e.Expiry.Add(leeway), true
	case KindSession:
		return e.IssuedAt.Add(maxTokenLifetime + leeway + MaxFutureSkew), true
	case KindSubject, KindScope:
		return e.Epoch.Add(maxTokenLifetime + leeway), true
	case KindKey:
		return time.Time{}, true
	}
	return time.Time{}, false
}
