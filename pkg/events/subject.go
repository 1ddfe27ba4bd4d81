package events

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// SubjectPrefix is the first token of every revocation subject. The stream
// (see [StreamConfig]) captures SubjectPrefix + ".>".
const SubjectPrefix = "revocations"

// subjectToken maps a kind to the token that names it in a subject.
var subjectToken = map[Kind]string{KindToken: "jti", KindSession: "sid", KindSubject: "sub", KindKey: "kid", KindScope: "scope"}

// errScopeSubject is the error of a subject function given KindScope,
// whose subject also names the claim.
var errScopeSubject = fmt.Errorf("%w: a scope's subject names its claim too: use ScopeSubject", ErrBadValue)

// Subject returns the subject an event about value of the given kind is
// published on: SubjectPrefix.<jti|sid|sub|kid>.<base64url(value), no
// padding>. One subject per revoked thing lets the stream keep only the
// latest message of each (MaxMsgsPerSubject 1), so replay costs what is
// revoked now, not the whole history.
func Subject(kind Kind, value string) (string, error) {
	if kind == KindScope {
		return "", errScopeSubject
	}
	if err := ValidValue(kind, value); err != nil {
		return "", err
	}
	return subject(kind, value), nil
}

// subject is [Subject] of a kind and value already validated.
func subject(kind Kind, value string) string {
	return SubjectPrefix + "." + subjectToken[kind] + "." + base64.RawURLEncoding.EncodeToString([]byte(value))
}

// IssuerSubject returns the subject an event about value of the given kind,
// scoped to issuer iss ([Event.Issuer]), is published on:
// [Subject] followed by .<base64url(iss), no padding>. Scoped and unscoped
// revocations of the same identifier, and those of different issuers, are
// on different subjects, so the stream keeps the latest of each. An empty
// iss gives [Subject].
func IssuerSubject(iss string, kind Kind, value string) (string, error) {
	if kind == KindScope {
		return "", errScopeSubject
	}
	if err := ValidValue(kind, value); err != nil {
		return "", err
	}
	if err := validIssuer(iss); err != nil {
		return "", err
	}
	return issuerSubject(iss, kind, value), nil
}

// issuerSubject is [IssuerSubject] of a kind, value and issuer already
// validated.
func issuerSubject(iss string, kind Kind, value string) string {
	if iss == "" {
		return subject(kind, value)
	}
	return subject(kind, value) + "." + base64.RawURLEncoding.EncodeToString([]byte(iss))
}

// ScopeSubject returns the subject an epoch scope event ([KindScope]) is
// published on: SubjectPrefix.scope.<base64url(claim)>.<base64url(value)>,
// followed by .<base64url(iss)> when scoped to an issuer; no padding.
func ScopeSubject(iss, claim, value string) (string, error) {
	if err := ValidClaim(claim); err != nil {
		return "", err
	}
	if err := ValidValue(KindScope, value); err != nil {
		return "", err
	}
	if err := validIssuer(iss); err != nil {
		return "", err
	}
	return scopeSubject(iss, claim, value), nil
}

// scopeSubject is [ScopeSubject] of values already validated.
func scopeSubject(iss, claim, value string) string {
	return scopeBase(claim, value) + issSuffix(iss)
}

func scopeBase(claim, value string) string {
	enc := base64.RawURLEncoding
	return SubjectPrefix + "." + subjectToken[KindScope] + "." + enc.EncodeToString([]byte(claim)) + "." + enc.EncodeToString([]byte(value))
}

func issSuffix(iss string) string {
	if iss == "" {
		return ""
	}
	return "." + base64.RawURLEncoding.EncodeToString([]byte(iss))
}

// eventSubject is the subject of an event already validated.
func eventSubject(e Event) string {
	if e.Kind == KindScope {
		return scopeSubject(e.Issuer, e.Claim, e.ScopeValue)
	}
	return issuerSubject(e.Issuer, e.Kind, e.Value())
}

// Subject returns the subject e is published on (see [Subject],
// [IssuerSubject] and [ScopeSubject]).
func (e Event) Subject() (string, error) {
	if e.Kind == KindScope {
		return ScopeSubject(e.Issuer, e.Claim, e.ScopeValue)
	}
	return IssuerSubject(e.Issuer, e.Kind, e.Value())
}

// OnSubject reports whether subj is the subject e is published on (see
// [Subject]), without building it: a consumer checks every message so, and
// building the subject cost an allocation per message. It does not
// validate e (Decode has).
func (e Event) OnSubject(subj string) bool {
	tok, ok := subjectToken[e.Kind]
	if !ok {
		return false
	}
	rest, ok := strings.CutPrefix(subj, SubjectPrefix+".")
	if !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, tok); !ok || !strings.HasPrefix(rest, ".") {
		return false
	}
	rest = rest[1:]
	if e.Kind == KindScope {
		claim, after, ok := strings.Cut(rest, ".")
		if !ok || !encodes(claim, e.Claim) {
			return false
		}
		rest = after
	}
	value, iss, scoped := strings.Cut(rest, ".")
	if scoped != (e.Issuer != "") {
		return false
	}
	return encodes(value, e.Value()) && (!scoped || encodes(iss, e.Issuer))
}

// base64URL is the alphabet of base64.RawURLEncoding.
const base64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// encodes reports whether enc is base64.RawURLEncoding of v, comparing as
// it encodes three bytes at a time.
func encodes(enc, v string) bool {
	if len(enc) != base64.RawURLEncoding.EncodedLen(len(v)) {
		return false
	}
	j := 0
	for i := 0; i < len(v); i += 3 {
		var b [3]byte
		n := copy(b[:], v[i:])
		x := uint(b[0])<<16 | uint(b[1])<<8 | uint(b[2])
		for k := range n + 1 { // n bytes make n+1 characters
			if enc[j] != base64URL[x>>(18-6*k)&0x3f] {
				return false
			}
			j++
		}
	}
	return true
}

// ParseSubject is the inverse of [Subject]. It refuses a subject scoped to
// an issuer; [ParseIssuerSubject] reads both.
func ParseSubject(s string) (Kind, string, error) {
	if strings.Count(s, ".") != 2 {
		return "", "", fmt.Errorf("%w: subject %q is not %s.<kind>.<value>", ErrBadValue, s, SubjectPrefix)
	}
	_, kind, value, err := ParseIssuerSubject(s)
	return kind, value, err
}

// ParseIssuerSubject is the inverse of [IssuerSubject]: the issuer (empty
// for an unscoped subject), the kind and the value.
func ParseIssuerSubject(s string) (iss string, kind Kind, value string, err error) {
	parts := strings.Split(s, ".")
	if len(parts) > 1 && parts[0] == SubjectPrefix && parts[1] == subjectToken[KindScope] {
		return "", "", "", fmt.Errorf("%w: a scope's subject: use ParseScopeSubject", ErrBadValue)
	}
	if len(parts) == 4 && parts[0] == SubjectPrefix {
		raw, err := base64.RawURLEncoding.DecodeString(parts[3])
		if err != nil {
			return "", "", "", fmt.Errorf("%w: subject issuer is not base64url", ErrBadValue)
		}
		if len(raw) == 0 {
			return "", "", "", fmt.Errorf("%w: subject issuer is empty", ErrBadValue)
		}
		if err := validIssuer(string(raw)); err != nil {
			return "", "", "", err
		}
		iss, parts = string(raw), parts[:3]
	}
	kind, value, err = parseSubject(s, parts)
	if err != nil {
		return "", "", "", err
	}
	return iss, kind, value, nil
}

// ParseScopeSubject is the inverse of [ScopeSubject]: the issuer (empty
// for an unscoped scope), the claim and the value.
func ParseScopeSubject(s string) (iss, claim, value string, err error) {
	parts := strings.Split(s, ".")
	if (len(parts) != 4 && len(parts) != 5) || parts[0] != SubjectPrefix || parts[1] != subjectToken[KindScope] {
		return "", "", "", fmt.Errorf("%w: subject %q is not %s.scope.<claim>.<value>[.<issuer>]", ErrBadValue, s, SubjectPrefix)
	}
	dec := func(p, what string) (string, error) {
		raw, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return "", fmt.Errorf("%w: subject %s is not base64url", ErrBadValue, what)
		}
		return string(raw), nil
	}
	if claim, err = dec(parts[2], "claim"); err != nil {
		return "", "", "", err
	}
	if value, err = dec(parts[3], "value"); err != nil {
		return "", "", "", err
	}
	if len(parts) == 5 {
		if iss, err = dec(parts[4], "issuer"); err != nil {
			return "", "", "", err
		}
		if iss == "" {
			return "", "", "", fmt.Errorf("%w: subject issuer is empty", ErrBadValue)
		}
	}
	if err := ValidClaim(claim); err != nil {
		return "", "", "", err
	}
	if err := ValidValue(KindScope, value); err != nil {
		return "", "", "", err
	}
	if err := validIssuer(iss); err != nil {
		return "", "", "", err
	}
	return iss, claim, value, nil
}

// parseSubject reads the kind and value of the first three parts of s.
func parseSubject(s string, parts []string) (Kind, string, error) {
	if len(parts) != 3 || parts[0] != SubjectPrefix {
		return "", "", fmt.Errorf("%w: subject %q is not %s.<kind>.<value>[.<issuer>]", ErrBadValue, s, SubjectPrefix)
	}
	var kind Kind
	for k, tok := range subjectToken {
		if tok == parts[1] {
			kind = k
		}
	}
	if kind == "" {
		return "", "", ErrUnknownKind
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", "", fmt.Errorf("%w: subject value is not base64url", ErrBadValue)
	}
	if err := ValidValue(kind, string(raw)); err != nil {
		return "", "", err
	}
	return kind, string(raw), nil
}
