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
