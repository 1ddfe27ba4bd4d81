package verifier

import (
	"errors"

	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
	"github.com/jwtrevoke/jwtrevoke/internal/revocation"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Every error [Verifier.Verify] returns wraps exactly one of the two class
// sentinels and one precise reason below, so a caller can branch on either:
//
//	errors.Is(err, verifier.ErrInvalidToken) // 401: the token is bad
//	errors.Is(err, verifier.ErrUnavailable)  // 503: cannot decide now, retry
//	errors.Is(err, verifier.ErrSessionRevoked)
//
// Error texts never contain content of the token, which is unverified.
var (
	// ErrInvalidToken is the class of "this token is bad": malformed,
	// disallowed algorithm or header, unknown key, bad signature, expired,
	// wrong claims, revoked. Answer 401.
	ErrInvalidToken = errors.New("verifier: invalid token")
	// ErrUnavailable is the class of "cannot decide now": revocation state
	// not yet replayed, too stale, over capacity, keys not fetched yet.
	// Answer 503 and let the client retry; never treat it as a bad token.
	ErrUnavailable = errors.New("verifier: cannot verify now")
)

// Reasons in the [ErrInvalidToken] class.
var (
	// ErrMalformed: not a compact JWS of three base64url segments with JSON
	// header and claims, or larger than Config.MaxTokenSize.
	ErrMalformed = errors.New("verifier: malformed token")
	// ErrAlgorithm: the header's alg is not in Config.Algorithms or does not
	// fit the key.
	ErrAlgorithm = errors.New("verifier: algorithm not allowed")
	// ErrHeader: the header names key material or extensions the verifier
	// refuses to follow (jku, x5u, jwk, x5c, crit) or lacks a usable kid.
	ErrHeader = errors.New("verifier: header not allowed")
	// ErrUnknownKey: no configured or published key has the token's kid.
	ErrUnknownKey = keyset.ErrUnknownKey
	// ErrSignature: the signature does not verify.
	ErrSignature = errors.New("verifier: invalid signature")
	// ErrExpired: exp (plus leeway) has passed.
	ErrExpired = errors.New("verifier: token expired")
	// ErrNotYetValid: nbf or iat lies in the future (beyond leeway).
	ErrNotYetValid = errors.New("verifier: token not valid yet")
	// ErrClaims: a required claim is missing or wrong (iss, aud, sub, jti,
	// iat, exp), the lifetime exceeds Config.MaxTokenLifetime, or
	// Config.Validate refused the token.
	ErrClaims = errors.New("verifier: invalid claims")
	// ErrWrongIssuer and ErrWrongAudience are ErrClaims for an iss or an
	// aud that is not the expected one (errors.Is matches both): a
	// receiver of security events answers them with their own error codes
	// (RFC 8935).
	ErrWrongIssuer   = errors.New("verifier: invalid claims: wrong iss")
	ErrWrongAudience = errors.New("verifier: invalid claims: wrong aud")
	// The four revocation reasons are the events package's (the same
	// values, so errors.Is matches either name): every place that decides
	// returns them, the Redis fallback included.

	// ErrTokenRevoked: the token's jti was revoked.
	ErrTokenRevoked = events.ErrTokenRevoked
	// ErrSessionRevoked: the token's session (sid) was revoked.
	ErrSessionRevoked = events.ErrSessionRevoked
	// ErrSubjectRevoked: the subject logged out everywhere after this token
	// was issued (iat not after the subject's logout epoch).
	ErrSubjectRevoked = events.ErrSubjectRevoked
	// ErrKeyRevoked: the key that signed the token was revoked.
	ErrKeyRevoked = events.ErrKeyRevoked
	// ErrScopeRevoked: an epoch scope of the token (a claim's value,
	// Config.EpochScopes, or its whole issuer) was logged out at or after
	// the token's iat.
	ErrScopeRevoked = events.ErrScopeRevoked
)

// Reasons in the [ErrUnavailable] class.
var (
	// ErrNotReady: the revocation stream has not been replayed yet.
	ErrNotReady = errors.New("verifier: revocation state not ready")
	// ErrStale: the revocation state may be further behind the stream than
	// Config.MaxStaleness and the stale policy rejects.
	ErrStale = errors.New("verifier: revocation state too stale")
	// ErrOverCapacity: more live revocations than Config.Capacity arrived;
	// the verifier fails closed rather than forget one.
	ErrOverCapacity = revocation.ErrOverCapacity
	// ErrKeysUnavailable: the JWKS has never been fetched successfully.
	ErrKeysUnavailable = keyset.ErrKeysUnavailable
)

// reasons maps every precise sentinel to its class and to the short code
// used in metrics, logs and the WWW-Authenticate error_description.
var reasons = []struct {
	err   error
	class error
	code  string
}{
	{ErrMalformed, ErrInvalidToken, "malformed"},
	{ErrAlgorithm, ErrInvalidToken, "algorithm"},
	{ErrHeader, ErrInvalidToken, "header"},
	{ErrUnknownKey, ErrInvalidToken, "unknown_key"},
	{ErrSignature, ErrInvalidToken, "signature"},
	{ErrExpired, ErrInvalidToken, "expired"},
	{ErrNotYetValid, ErrInvalidToken, "not_yet_valid"},
	{ErrClaims, ErrInvalidToken, "claims"},
	{ErrTokenRevoked, ErrInvalidToken, "revoked_token"},
	{ErrSessionRevoked, ErrInvalidToken, "revoked_session"},
	{ErrSubjectRevoked, ErrInvalidToken, "revoked_subject"},
	{ErrKeyRevoked, ErrInvalidToken, "revoked_key"},
	{ErrScopeRevoked, ErrInvalidToken, "revoked_scope"},
	{ErrNotReady, ErrUnavailable, "not_ready"},
	{ErrStale, ErrUnavailable, "stale"},
	{ErrOverCapacity, ErrUnavailable, "over_capacity"},
	{ErrKeysUnavailable, ErrUnavailable, "keys_unavailable"},
}

// Reason returns the short, stable code of the reason err carries
// ("revoked_session", "expired", "stale", ...), "ok" for nil, and "internal"
// for an error that is not the verifier's.
func Reason(err error) string {
	if err == nil {
		return "ok"
	}
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.code
		}
	}
	return "internal"
}

// verifyError is what Verify returns: a class, a precise reason and, where it
// helps, a trusted detail (never token content).
type verifyError struct {
	class, reason error
	detail        string
	cause         error
}

func (e *verifyError) Error() string {
	if e.cause != nil {
		return e.cause.Error()
	}
	s := e.reason.Error()
	if e.detail != "" {
		s += ": " + e.detail
	}
	return s
}

func (e *verifyError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.class, e.reason, e.cause}
	}
	return []error{e.class, e.reason}
}

// fail builds an error of reason; its class comes from the reasons table.
func fail(reason error, detail string) error {
	return &verifyError{class: classOf(reason), reason: reason, detail: detail}
}

// wrap is fail with a cause that the error also unwraps to; the cause's text
// becomes the message, so callers pass only causes whose text is trusted.
func wrap(reason, cause error) error {
	return &verifyError{class: classOf(reason), reason: reason, cause: cause}
}

func classOf(reason error) error {
	for _, r := range reasons {
		if r.err == reason {
			return r.class
		}
	}
	return ErrInvalidToken
}
