package issuer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

var b64 = base64.RawURLEncoding

// reservedClaims are the registered claims and those the issuer sets
// itself; session claims may not name them (see reservedClaim).
var reservedClaims = [...]string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "cnf", "client_id"}

// reservedClaim reports whether name is a reserved claim under Unicode case
// folding ("ſub", "SUB"): readers built on encoding/json match claim names
// that way, so such a claim would stand in for the real one.
func reservedClaim(name string) bool {
	for _, r := range reservedClaims {
		if strings.EqualFold(name, r) {
			return true
		}
	}
	return false
}

// errTokenTooLarge: the access token would exceed what verifiers accept.
var errTokenTooLarge = errors.New("issuer: access token larger than verifiers accept")

// numericDate encodes t as a JWT NumericDate with microsecond precision
// (1763812854.123456), so a token and a logout can be told apart within the
// same second.
type numericDate time.Time

func (d numericDate) MarshalJSON() ([]byte, error) {
	us := time.Time(d).UnixMicro()
	sec, frac := us/1e6, us%1e6
	if frac < 0 {
		sec, frac = sec-1, frac+1e6
	}
	return fmt.Appendf(nil, "%d.%06d", sec, frac), nil
}

// microseconds truncates t to the precision tokens carry, dropping the
// monotonic reading, so that what is compared is what is encoded.
func microseconds(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()) }

// randomID returns 128 random bits, base64url: jti and sid.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return b64.EncodeToString(b[:])
}

// accessToken is what one mint needs.
type accessToken struct {
	sub    string
	sid    string
	extra  map[string]any
	iat    time.Time // already truncated to microseconds
	expiry time.Time
}

// mint signs an access token with the active signing key (errKeysRevoked
// when there is none) and returns it and its
// jti. The registered claims are written after the session's extra claims,
// so the extras can never override them; a reserved name in any spelling
// (a session stored before that rule) is dropped. It refuses, with
// errTokenTooLarge, a token that signed by any configured key would exceed
// the verifiers' default MaxTokenSize.
func (s *Server) mint(t accessToken) (string, string, error) {
	jti := randomID()
	claims := make(map[string]any, len(t.extra)+8)
	for k, v := range t.extra {
		if !reservedClaim(k) {
			claims[k] = v
		}
	}
	claims["iss"] = s.cfg.Issuer
	claims["sub"] = t.sub
	if len(s.cfg.Audiences) == 1 {
		claims["aud"] = s.cfg.Audiences[0]
	} else {
		claims["aud"] = s.cfg.Audiences
	}
	claims["iat"] = numericDate(t.iat)
	claims["exp"] = numericDate(t.expiry)
	claims["jti"] = jti
	claims["sid"] = t.sid
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", fmt.Errorf("issuer: encode claims: %w", err)
	}
	if s.maxFrame+b64.EncodedLen(len(payload)) > verifier.DefaultMaxTokenSize {
		return "", "", errTokenTooLarge
	}
	key := s.keys.active()
	if key == nil {
		return "", "", errKeysRevoked
	}
	signing := key.header + "." + b64.EncodeToString(payload)
	sig, err := key.method.Sign(signing, key.priv)
	if err != nil {
		return "", "", fmt.Errorf("issuer: sign: %w", err)
	}
	return signing + "." + b64.EncodeToString(sig), jti, nil
}

// frameLen is the length of a token signed by k, without its claims
// segment: header, two dots, signature.
func frameLen(k signer) int {
	return len(encodedHeader(k)) + 2 + b64.EncodedLen(k.sigLen)
}

// encodedHeader returns base64url of the JWS header for k.
func encodedHeader(k signer) string {
	h, _ := json.Marshal(map[string]string{"alg": k.alg, "kid": k.kid, "typ": "at+jwt"})
	return b64.EncodeToString(h)
}

// Refresh tokens are "<sid>.<base64url(32 bytes)>": the session id (the
// Redis hash tag) is readable without a look-up; the 256 secret bits are
// random for the first token of a session and HMAC-derived from the
// presented token for its successors. Only SHA-256 hashes are stored.

const refreshSecretLen = 32

var errMalformedRefresh = errors.New("issuer: malformed refresh token")

// newRefreshToken returns a random first refresh token for sid.
func newRefreshToken(sid string) string {
	var b [refreshSecretLen]byte
	_, _ = rand.Read(b[:])
	return sid + "." + b64.EncodeToString(b[:])
}

// successor derives the refresh token that replaces tok: the same input
// always gives the same successor, so a grace-window retry gets back
// exactly what the first attempt handed out, while nothing but hashes is
// stored.
func (s *Server) successor(sid, tok string) string {
	m := hmac.New(sha256.New, s.cfg.RefreshSecret)
	m.Write([]byte(tok))
	return sid + "." + b64.EncodeToString(m.Sum(nil))
}

// hashToken is what the store keeps of a refresh token.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// parseRefreshToken checks the shape of tok and returns its session id.
func parseRefreshToken(tok string) (string, error) {
	sid, secret, ok := strings.Cut(tok, ".")
	if !ok || !validSID(sid) || len(secret) != b64.EncodedLen(refreshSecretLen) {
		return "", errMalformedRefresh
	}
	if _, err := b64.Strict().DecodeString(secret); err != nil {
		return "", errMalformedRefresh
	}
	return sid, nil
}

// validSID accepts the session ids the issuer makes (22 base64url
// characters) and, leniently, any 1..64 base64url characters.
func validSID(sid string) bool {
	if sid == "" || len(sid) > 64 {
		return false
	}
	for i := 0; i < len(sid); i++ {
		c := sid[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// looksLikeJWS reports whether tok has the shape of a compact JWS.
func looksLikeJWS(tok string) bool { return strings.Count(tok, ".") == 2 }

// expSeconds is exp as the revoker's NumericDate, rounded up to the whole
// second so the revocation never ends before the token does.
func expSeconds(t time.Time) *float64 {
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	f := float64(sec)
	return &f
}
