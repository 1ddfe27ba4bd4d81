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
var subjectToken = map[Kind]string{KindToken: "jti", KindSession: "sid", KindSubject: "sub", KindKey: "kid"}

// Subject returns the subject an event about value of the given kind is
// published on: SubjectPrefix.<jti|sid|sub|kid>.<base64url(value), no
// padding>. One subject per revoked thing lets the stream keep only the
// latest message of each (MaxMsgsPerSubject 1), so replay costs what is
// revoked now, not the whole history.
func Subject(kind Kind, value string) (string, error) {
	if err := ValidValue(kind, value); err != nil {
		return "", err
	}
	return subject(kind, value), nil
}

// subject is [Subject] of a kind and value already validated.
func subject(kind Kind, value string) string {
	return SubjectPrefix + "." + subjectToken[kind] + "." + base64.RawURLEncoding.EncodeToString([]byte(value))
}

// Subject returns the subject e is published on (see [Subject]).
func (e Event) Subject() (string, error) { return Subject(e.Kind, e.Value()) }

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
	return encodes(rest[1:], e.Value())
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

// ParseSubject is the inverse of [Subject].
func ParseSubject(s string) (Kind, string, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] != SubjectPrefix {
		return "", "", fmt.Errorf("%w: subject %q is not %s.<kind>.<value>", ErrBadValue, s, SubjectPrefix)
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
