package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Decode parses and validates one encoded event. It is strict: unknown
// fields, trailing data, a wrong type, a missing field, an unknown kind or
// version, an oversized message or an absurd time is an error wrapping
// [ErrInvalid], and the returned Event is then the zero value.
//
// Beyond what the package documentation lists, Decode refuses, with
// [ErrMalformed]:
//   - a key that appears twice in the event;
//   - a key spelt in another case than the contract's ("ID" is not "id"):
//     keys are case-sensitive;
//   - a null value: a field is either present with a value of its type or
//     absent;
//   - a v that is not an integer (1.0 and 1e0 are refused; only 1 is version 1).
//
// Any valid JSON spelling of an event is accepted: insignificant whitespace,
// keys in any order, string escapes. Times are read as [time.Time.UnmarshalText]
// reads them (RFC 3339, any offset, converted to UTC); a time written with
// escapes is refused. A syntactically valid event whose v is an integer other
// than 1 is refused with [ErrUnsupportedVersion] whatever else it carries, so
// a newer producer's event is reported as such.
//
// The strings of the returned Event share one allocation.
func Decode(b []byte) (Event, error) {
	if len(b) > MaxEventSize {
		return Event{}, ErrTooLarge
	}
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD, making two
	// different byte strings the same identifier: refuse instead.
	if !utf8.Valid(b) {
		return Event{}, fmt.Errorf("%w: not valid utf-8", ErrBadValue)
	}
	e, err := decodeObject(b)
	if err != nil {
		return Event{}, err
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// The strictnesses Decode adds to encoding/json's reading; each wraps
// ErrMalformed.
var (
	errDuplicateKey = fmt.Errorf("%w: duplicate key", ErrMalformed)
	errKeyCase      = fmt.Errorf("%w: keys are case-sensitive", ErrMalformed)
	errNull         = fmt.Errorf("%w: null value", ErrMalformed)
)

// The fields of the wire format, as indexes into decodeObject's tables.
const (
	fieldV = iota
	fieldID
	fieldKind
	fieldIssuedAt
	fieldJTI
	fieldExp
	fieldSID
	fieldSub
	fieldEpoch
	fieldKID
	fieldIss
	fieldClaim
	fieldValue
	fieldReason
	fieldInitiator
	numFields
)

// fieldOf returns the index of the field named key, or -1. The comparison is
// exact: keys are case-sensitive.
func fieldOf(key []byte) int {
	switch string(key) {
	case "v":
		return fieldV
	case "id":
		return fieldID
	case "kind":
		return fieldKind
	case "issued_at":
		return fieldIssuedAt
	case "jti":
		return fieldJTI
	case "exp":
		return fieldExp
	case "sid":
		return fieldSID
	case "sub":
		return fieldSub
	case "epoch":
		return fieldEpoch
	case "kid":
		return fieldKID
	case "iss":
		return fieldIss
	case "claim":
		return fieldClaim
	case "value":
		return fieldValue
	case "reason":
		return fieldReason
	case "initiator":
		return fieldInitiator
	}
	return -1
}

// fieldName is the inverse of fieldOf.
func fieldName(f int) string {
	return [numFields]string{"v", "id", "kind", "issued_at", "jti", "exp", "sid", "sub", "epoch", "kid", "iss", "claim", "value", "reason", "initiator"}[f]
}

func isTimeField(f int) bool { return f == fieldIssuedAt || f == fieldExp || f == fieldEpoch }

// span is where a string value lies in the input: b[start:end] between the
// quotes. escaped says it holds a backslash.
type span struct {
	start, end int
	escaped    bool
}

// decodeObject reads b, which must be one JSON object (or null) and nothing
// but whitespace around it, into an Event without validating it.
//
// Errors follow the order encoding/json gave them: a syntax error anywhere
// first, then data after the event, then a value of the wrong type, an
// unknown key or an unparsable time (ErrUnsupportedVersion instead when v is
// an integer other than 1), then a missing v.
func decodeObject(b []byte) (Event, error) {
	s := scanner{b: b}
	s.skipSpace()
	if s.pos == len(b) {
		return Event{}, fmt.Errorf("%w: no event", ErrMalformed)
	}
	switch b[s.pos] {
	case '{':
		s.pos++
	case 'n':
		// A bare null decodes to nothing, which lacks everything.
		if err := s.skipValue(); err != nil {
			return Event{}, err
		}
		if s.skipSpace(); s.pos != len(b) {
			return Event{}, fmt.Errorf("%w: data after the event", ErrMalformed)
		}
		return Event{}, fmt.Errorf("%w: v", ErrMissingField)
	default:
		return Event{}, fmt.Errorf("%w: not a json object", ErrMalformed)
	}

	var (
		seen    uint16
		strs    [numFields]span
		version int64
		vOK     bool  // v was read once, as an integer
		soft    error // first error that still lets the version be reported
	)
	fail := func(err error) {
		if soft == nil {
			soft = err
		}
	}
	s.skipSpace()
	if s.peek() == '}' {
		s.pos++
	} else {
		for {
			if s.peek() != '"' {
				return Event{}, s.syntaxError("expected a key")
			}
			key, err := s.scanString()
			if err != nil {
				return Event{}, err
			}
			f := -1
			if !key.escaped {
				f = fieldOf(b[key.start:key.end])
			} else if name, ok := unquote(b[key.start-1 : key.end+1]); ok {
				f = fieldOf([]byte(name))
			}
			s.skipSpace()
			if s.peek() != ':' {
				return Event{}, s.syntaxError("expected ':'")
			}
			s.pos++
			s.skipSpace()

			switch c := s.peek(); {
			case f < 0:
				fail(unknownKey(b[key.start-1 : key.end+1]))
				err = s.skipValue()
			case seen&(1<<f) != 0:
				fail(fmt.Errorf("%w %q", errDuplicateKey, fieldName(f)))
				if f == fieldV {
					vOK = false
				}
				err = s.skipValue()
			case c == 'n':
				seen |= 1 << f
				fail(fmt.Errorf("%w for %q", errNull, fieldName(f)))
				err = s.skipValue()
			case f == fieldV:
				seen |= 1 << f
				if c != '-' && (c < '0' || c > '9') {
					fail(fmt.Errorf("%w: v is not a number", ErrMalformed))
					err = s.skipValue()
					break
				}
				var n []byte
				if n, err = s.scanNumber(); err == nil {
					if version, vOK = parseInt(n); !vOK {
						fail(fmt.Errorf("%w: v is not an integer", ErrMalformed))
					}
				}
			case c == '"':
				seen |= 1 << f
				strs[f], err = s.scanString()
			default:
				seen |= 1 << f
				fail(fmt.Errorf("%w: %s is not a string", ErrMalformed, fieldName(f)))
				err = s.skipValue()
			}
			if err != nil {
				return Event{}, err
			}

			s.skipSpace()
			if c := s.peek(); c == ',' {
				s.pos++
				s.skipSpace()
				continue
			} else if c == '}' {
				s.pos++
				break
			}
			return Event{}, s.syntaxError("expected ',' or '}'")
		}
	}
	if s.skipSpace(); s.pos != len(b) {
		return Event{}, fmt.Errorf("%w: data after the event", ErrMalformed)
	}

	var e Event
	for _, f := range [...]int{fieldIssuedAt, fieldExp, fieldEpoch} {
		if seen&(1<<f) == 0 || soft != nil {
			continue
		}
		var t time.Time
		if err := t.UnmarshalText(b[strs[f].start:strs[f].end]); err != nil {
			fail(fmt.Errorf("%w: %s: %s", ErrMalformed, fieldName(f), shorten(err.Error())))
			continue
		}
		switch f {
		case fieldIssuedAt:
			e.IssuedAt = utc(t)
		case fieldExp:
			e.Expiry = utc(t)
		case fieldEpoch:
			e.Epoch = utc(t)
		}
	}
	if soft != nil {
		if vOK && version != Version {
			return Event{}, fmt.Errorf("%w: %d", ErrUnsupportedVersion, version)
		}
		return Event{}, soft
	}
	if !vOK {
		return Event{}, fmt.Errorf("%w: v", ErrMissingField)
	}
	e.Version = int(version)

	// A known kind is its constant; every other unescaped string is copied
	// into one allocation and sliced from it.
	if sp := strs[fieldKind]; seen&(1<<fieldKind) != 0 && !sp.escaped {
		if k, ok := knownKind(b[sp.start:sp.end]); ok {
			e.Kind = k
			seen &^= 1 << fieldKind
		}
	}
	copied := func(f int) bool { return seen&(1<<f) != 0 && !isTimeField(f) && !strs[f].escaped }
	n := 0
	for f := fieldID; f < numFields; f++ {
		if copied(f) {
			n += strs[f].end - strs[f].start
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	var at [numFields]int
	for f := fieldID; f < numFields; f++ {
		if copied(f) {
			at[f] = sb.Len()
			sb.Write(b[strs[f].start:strs[f].end])
		}
	}
	all := sb.String()
	for f := fieldID; f < numFields; f++ {
		if seen&(1<<f) == 0 || isTimeField(f) {
			continue
		}
		var v string
		if sp := strs[f]; sp.escaped {
			var ok bool
			if v, ok = unquote(b[sp.start-1 : sp.end+1]); !ok {
				// scanString accepted it, so encoding/json must too.
				return Event{}, fmt.Errorf("%w: %s is not a json string", ErrMalformed, fieldName(f))
			}
		} else {
			v = all[at[f] : at[f]+sp.end-sp.start]
		}
		switch f {
		case fieldID:
			e.ID = v
		case fieldKind:
			e.Kind = Kind(v)
		case fieldJTI:
			e.JTI = v
		case fieldSID:
			e.SID = v
		case fieldSub:
			e.Sub = v
		case fieldKID:
			e.KID = v
		case fieldIss:
			e.Issuer = v
		case fieldClaim:
			e.Claim = v
		case fieldValue:
			e.ScopeValue = v
		case fieldReason:
			e.Reason = v
		case fieldInitiator:
			e.Initiator = v
		}
	}
	return e, nil
}

// knownKind returns the constant of the kind named b, if this version knows
// it.
func knownKind(b []byte) (Kind, bool) {
	for _, k := range [...]Kind{KindToken, KindSession, KindSubject, KindKey, KindScope} {
		if string(b) == string(k) {
			return k, true
		}
	}
	return "", false
}

// unknownKey describes an unknown key, given quoted. A key that differs from
// a field of the contract only by case gets its own error, errKeyCase.
func unknownKey(quoted []byte) error {
	name, ok := unquote(quoted)
	if !ok {
		return fmt.Errorf("%w: unknown field %s", ErrMalformed, shorten(string(quoted)))
	}
	for f := range numFields {
		if strings.EqualFold(name, fieldName(f)) {
			return fmt.Errorf("%w: %s is not %q", errKeyCase, shorten(string(quoted)), fieldName(f))
		}
	}
	return fmt.Errorf("%w: unknown field %s", ErrMalformed, shorten(string(quoted)))
}

// unquote decodes the JSON string literal q, quotes included, exactly as
// encoding/json does (lone surrogates become U+FFFD). It is the slow path
// for strings holding a backslash.
func unquote(q []byte) (string, bool) {
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		return "", false
	}
	return s, true
}

// parseInt reads a JSON number as encoding/json reads it into an int: an
// optional minus and decimal digits within the range of int64; a fraction or
// an exponent makes it no integer.
func parseInt(n []byte) (int64, bool) {
	neg := false
	if len(n) > 0 && n[0] == '-' {
		neg, n = true, n[1:]
	}
	if len(n) == 0 {
		return 0, false
	}
	var u uint64
	for _, c := range n {
		if c < '0' || c > '9' {
			return 0, false
		}
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to itself, which is right
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// shorten keeps error text to a line: the input is untrusted and may be long.
func shorten(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// scanner walks a JSON text. It checks syntax only; b is known to be valid
// UTF-8.
type scanner struct {
	b   []byte
	pos int
}

// peek returns the byte at the position, or 0 at the end.
func (s *scanner) peek() byte {
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

func (s *scanner) skipSpace() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) syntaxError(what string) error {
	if s.pos >= len(s.b) {
		return fmt.Errorf("%w: %s, found the end", ErrMalformed, what)
	}
	return fmt.Errorf("%w: %s at offset %d", ErrMalformed, what, s.pos)
}

// scanString reads the string literal at the position (which is a quote) and
// returns where its contents lie.
func (s *scanner) scanString() (span, error) {
	s.pos++ // the opening quote
	sp := span{start: s.pos}
	b := s.b
	for i := s.pos; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			sp.end = i
			s.pos = i + 1
			return sp, nil
		case c == '\\':
			sp.escaped = true
			i++
			if i >= len(b) {
				break
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) {
					s.pos = i
					return span{}, s.syntaxError("bad \\u escape")
				}
				i += 4
			default:
				s.pos = i
				return span{}, s.syntaxError("bad escape")
			}
		case c < 0x20:
			s.pos = i
			return span{}, s.syntaxError("control character in a string")
		}
	}
	s.pos = len(b)
	return span{}, s.syntaxError("unterminated string")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scanNumber reads the number at the position and returns its text.
func (s *scanner) scanNumber() ([]byte, error) {
	b, i := s.b, s.pos
	start := i
	digits := func() bool {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		s.pos = i
		return nil, s.syntaxError("bad number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			s.pos = i
			return nil, s.syntaxError("bad number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			s.pos = i
			return nil, s.syntaxError("bad number")
		}
	}
	s.pos = i
	return b[start:i], nil
}

// skipValue reads any JSON value at the position, checking its syntax.
// Nesting is bounded by MaxEventSize, so the recursion is too.
func (s *scanner) skipValue() error {
	switch c := s.peek(); c {
	case '"':
		_, err := s.scanString()
		return err
	case '{', '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.pos++
		s.skipSpace()
		if s.peek() == end {
			s.pos++
			return nil
		}
		for {
			if c == '{' {
				if s.peek() != '"' {
					return s.syntaxError("expected a key")
				}
				if _, err := s.scanString(); err != nil {
					return err
				}
				s.skipSpace()
				if s.peek() != ':' {
					return s.syntaxError("expected ':'")
				}
				s.pos++
				s.skipSpace()
			}
			if err := s.skipValue(); err != nil {
				return err
			}
			s.skipSpace()
			switch s.peek() {
			case ',':
				s.pos++
				s.skipSpace()
			case end:
				s.pos++
				return nil
			default:
				return s.syntaxError("expected ',' or '" + string(end) + "'")
			}
		}
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		_, err := s.scanNumber()
		return err
	}
}

func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.b[s.pos:], []byte(word)) {
		return s.syntaxError("bad literal")
	}
	s.pos += len(word)
	return nil
}
