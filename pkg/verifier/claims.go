package verifier

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// Claims is a verified token. Verify returns it only when every check passed,
// never alongside an error. A Claims may be shared by concurrent requests
// carrying the same token: treat it as read-only.
type Claims struct {
	// Issuer is iss.
	Issuer string
	// Subject is sub.
	Subject string
	// Audience is aud.
	Audience []string
	// SessionID is sid (or the configured SessionClaim); empty when the
	// token has none.
	SessionID string
	// ID is jti (or the configured TokenIDClaim); empty only when
	// TokenIDOptional let a token without one through.
	ID string
	// KeyID is the kid of the key that verified the signature.
	KeyID string
	// IssuedAt is iat, with the sub-second precision the token carries.
	IssuedAt time.Time
	// ExpiresAt is exp.
	ExpiresAt time.Time
	// NotBefore is nbf; zero when absent.
	NotBefore time.Time
	// Scopes are the token's values of the claims configured as epoch
	// scopes (Config.EpochScopes) that it carries as strings.
	Scopes []events.ScopeClaim

	raw string // the compact token, for Decode
}

// Decode unmarshals the token's whole claims set into v (a pointer to a
// struct or map), for private claims such as roles or tenant. The verifier
// has refused any token with a claim name given twice. Decode uses
// encoding/json, which matches struct field names case-insensitively (with
// Unicode folding): read registered claims from the Claims fields, which
// were read by their exact names, not through Decode.
func (c *Claims) Decode(v any) error {
	parts := strings.SplitN(c.raw, ".", 3)
	if len(parts) != 3 {
		return errors.New("verifier: claims: no token")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("verifier: claims: %w", err)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("verifier: claims: %w", err)
	}
	return nil
}

// preciseDate is a NumericDate read without losing the fraction: golang-jwt
// truncates to its package-wide TimePrecision (a second by default), and the
// logout-epoch comparison needs sub-second precision.
type preciseDate struct{ time.Time }

var errBadDate = errors.New("verifier: numeric date is not a number of seconds")

// parseNumericDate reads a JSON number of seconds since the epoch exactly,
// to the nanosecond, when written in plain decimal notation; exponent
// notation goes through float64.
func parseNumericDate(s string) (time.Time, error) {
	if s == "" || len(s) > 40 {
		return time.Time{}, errBadDate
	}
	if strings.ContainsAny(s, "eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
			return time.Time{}, errBadDate
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	intPart, fracPart, hasFrac := strings.Cut(s, ".")
	if intPart == "" || intPart[0] == '-' || intPart[0] == '+' {
		return time.Time{}, errBadDate
	}
	sec, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || sec > 1e11 {
		return time.Time{}, errBadDate
	}
	var nsec int64
	if hasFrac {
		if fracPart == "" {
			return time.Time{}, errBadDate
		}
		digits := fracPart
		if len(digits) > 9 {
			digits = digits[:9]
		}
		for _, c := range fracPart {
			if c < '0' || c > '9' {
				return time.Time{}, errBadDate
			}
		}
		n, _ := strconv.ParseInt(digits, 10, 64)
		for i := len(digits); i < 9; i++ {
			n *= 10
		}
		nsec = n
	}
	return time.Unix(sec, nsec).UTC(), nil
}

// tokenClaims is what the parser decodes; it implements jwt.Claims so the
// golang-jwt validator checks exp, nbf, iat, iss and aud.
type tokenClaims struct {
	Issuer    string
	Subject   string
	Audience  jwt.ClaimStrings
	ExpiresAt preciseDate
	NotBefore preciseDate
	IssuedAt  preciseDate
	ID        string
	SessionID string
	Scopes    []events.ScopeClaim
}

// registeredClaims are the claims the verifier reads under their own names;
// the session and token-id claims are configurable and must be others.
var registeredClaims = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat"}

// decodeClaims reads the claims the verifier uses from the claims set b,
// each by its exact name (see readObject), the session id from the claim
// named sid, the token id from the one named jti and the string values of
// the epoch scope claims named scopes; a null claim is an absent one.
func decodeClaims(b []byte, sid, jti string, scopes ...string) (tokenClaims, error) {
	var (
		tc  tokenClaims
		buf [smallObject]member
	)
	members, err := readObject(b, buf[:])
	if errors.Is(err, errDuplicateName) {
		return tc, fail(ErrMalformed, "a claim appears twice")
	}
	if err != nil {
		return tc, fail(ErrMalformed, "claims are not a valid json object")
	}
	for _, f := range [...]struct {
		name string
		dst  *string
	}{{"iss", &tc.Issuer}, {"sub", &tc.Subject}, {jti, &tc.ID}, {sid, &tc.SessionID}} {
		if raw := lookup(members, f.name); raw != nil {
			var ok bool
			if *f.dst, ok = stringValue(raw); !ok {
				return tc, fail(ErrMalformed, f.name+" is not a string")
			}
		}
	}
	for _, f := range [...]struct {
		name string
		dst  *preciseDate
	}{{"exp", &tc.ExpiresAt}, {"nbf", &tc.NotBefore}, {"iat", &tc.IssuedAt}} {
		if raw := lookup(members, f.name); raw != nil {
			t, err := parseNumericDate(string(raw))
			if err != nil {
				return tc, fail(ErrMalformed, f.name+" is not a numeric date")
			}
			f.dst.Time = t
		}
	}
	for _, name := range scopes {
		if v, ok := stringValue(lookup(members, name)); ok {
			tc.Scopes = append(tc.Scopes, events.ScopeClaim{Claim: name, Value: v})
		}
	}
	if raw := lookup(members, "aud"); raw != nil {
		if s, ok := stringValue(raw); ok {
			tc.Audience = jwt.ClaimStrings{s}
		} else if err := json.Unmarshal(raw, &tc.Audience); err != nil {
			return tc, fail(ErrMalformed, "aud is not a string or an array of strings")
		}
	}
	return tc, nil
}

func numericDate(d preciseDate) (*jwt.NumericDate, error) {
	if d.IsZero() {
		return nil, nil
	}
	return &jwt.NumericDate{Time: d.Time}, nil
}

func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return numericDate(c.ExpiresAt) }
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error)      { return numericDate(c.NotBefore) }
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return numericDate(c.IssuedAt) }
func (c *tokenClaims) GetIssuer() (string, error)                   { return c.Issuer, nil }
func (c *tokenClaims) GetSubject() (string, error)                  { return c.Subject, nil }
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error)       { return c.Audience, nil }
