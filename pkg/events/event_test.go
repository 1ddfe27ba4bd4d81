package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 500_000_000, time.UTC)

func validEvents() []Event {
	sub := NewSubject("sub.77aa", "alice", t0.Add(-377*time.Millisecond+123456789), t0)
	sub.Reason = "logout_all"
	key := NewKey("key.0001", "2026-11-a", t0)
	key.Reason, key.Initiator = "compromised", "ops"
	ses := NewSession("ses.9e1d", "s-42", t0)
	ses.Reason = "logout"
	scope := NewScope("scp.0001", "client_id", "app-7", t0.Add(-time.Second), t0).ForIssuer("https://idp.example/")
	scope.Reason = "client_compromised"
	return []Event{
		NewToken("tok.5f0c", "a1b2c3", t0.Add(5*time.Minute), t0),
		ses, sub, key, scope,
		NewIssuerEpoch("iss.0001", "https://idp.example/", t0, t0),
	}
}

func TestRoundTrip(t *testing.T) {
	for _, e := range validEvents() {
		t.Run(string(e.Kind), func(t *testing.T) {
			b, err := Encode(e)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !got.Equal(e) {
				t.Fatalf("round trip changed the event:\n got %+v\nwant %+v", got, e)
			}
		})
	}
}

// TestDocExamples keeps the worked examples of the package documentation true.
func TestDocExamples(t *testing.T) {
	for _, line := range strings.Split(docExamples, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if _, err := Decode([]byte(line)); err != nil {
			t.Errorf("doc example %s: %v", line, err)
		}
	}
}

const docExamples = `
{"v":1,"id":"tok.5f0c","kind":"token","issued_at":"2026-11-22T10:00:00.5Z","jti":"a1b2c3","exp":"2026-11-22T10:05:00Z"}
{"v":1,"id":"ses.9e1d","kind":"session","issued_at":"2026-11-22T10:00:00.5Z","sid":"s-42","reason":"logout"}
{"v":1,"id":"sub.77aa","kind":"subject","issued_at":"2026-11-22T10:00:00.5Z","sub":"alice","epoch":"2026-11-22T10:00:00.123456789Z","reason":"logout_all"}
{"v":1,"id":"key.0001","kind":"key","issued_at":"2026-11-22T10:00:00.5Z","kid":"2026-11-a","reason":"compromised","initiator":"ops"}
{"v":1,"id":"ses.b7e0","kind":"session","issued_at":"2026-11-22T10:00:00.5Z","sid":"8c1f-44d0","iss":"https://idp.example.com/","reason":"backchannel_logout"}
`

func TestDecodeRejects(t *testing.T) {
	long := strings.Repeat("x", MaxValueLen+1)
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, ErrMalformed},
		{"not json", `hello`, ErrMalformed},
		{"array", `[1]`, ErrMalformed},
		{"null", `null`, ErrMissingField},
		{"no version", `{"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, ErrMissingField},
		{"future version", `{"v":2,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, ErrUnsupportedVersion},
		{"version as string", `{"v":"1","id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, ErrMalformed},
		{"unknown kind", `{"v":1,"id":"a","kind":"tenant","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, ErrUnknownKind},
		{"missing kind", `{"v":1,"id":"a","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, ErrMissingField},
		{"missing id", `{"v":1,"kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, ErrMissingField},
		{"bad id", `{"v":1,"id":"a b","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, ErrBadValue},
		{"missing kid", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z"}`, ErrMissingField},
		{"missing exp", `{"v":1,"id":"a","kind":"token","issued_at":"2026-11-22T10:00:00Z","jti":"j"}`, ErrMissingField},
		{"missing epoch", `{"v":1,"id":"a","kind":"subject","issued_at":"2026-11-22T10:00:00Z","sub":"s"}`, ErrMissingField},
		{"missing issued_at", `{"v":1,"id":"a","kind":"key","kid":"k"}`, ErrMissingField},
		{"field of another kind", `{"v":1,"id":"a","kind":"session","issued_at":"2026-11-22T10:00:00Z","sid":"s","jti":"j"}`, ErrUnexpectedField},
		{"epoch on a session", `{"v":1,"id":"a","kind":"session","issued_at":"2026-11-22T10:00:00Z","sid":"s","epoch":"2026-11-22T10:00:00Z"}`, ErrUnexpectedField},
		{"unknown field", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k","admin":true}`, ErrMalformed},
		{"trailing data", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"} {}`, ErrMalformed},
		{"bad time", `{"v":1,"id":"a","kind":"key","issued_at":"yesterday","kid":"k"}`, ErrMalformed},
		{"year 1970", `{"v":1,"id":"a","kind":"key","issued_at":"1970-01-01T00:00:01Z","kid":"k"}`, ErrBadTime},
		{"year 9999", `{"v":1,"id":"a","kind":"token","issued_at":"2026-11-22T10:00:00Z","jti":"j","exp":"9999-01-01T00:00:00Z"}`, ErrBadTime},
		{"epoch far in the future", `{"v":1,"id":"a","kind":"subject","issued_at":"2026-11-22T10:00:00Z","sub":"s","epoch":"2026-11-23T10:00:00Z"}`, ErrBadTime},
		{"value too long", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"` + long + `"}`, ErrBadValue},
		{"control character", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"a\u0000b"}`, ErrBadValue},
		{"invalid utf-8", "{\"v\":1,\"id\":\"a\",\"kind\":\"key\",\"issued_at\":\"2026-11-22T10:00:00Z\",\"kid\":\"\xff\"}", ErrBadValue},
		{"iss not a string", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k","iss":1}`, ErrMalformed},
		{"iss null", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k","iss":null}`, ErrMalformed},
		{"ISS", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k","ISS":"x"}`, ErrMalformed},
		{"iss too long", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k","iss":"` + long + `"}`, ErrBadValue},
		{"iss control character", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k","iss":"a\nb"}`, ErrBadValue},
		{"oversized", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k","reason":"` + strings.Repeat(" ", MaxEventSize) + `"}`, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if !e.Equal(Event{}) {
				t.Fatalf("Decode returned a partial event %+v with its error", e)
			}
		})
	}
}

func TestEncodeValidates(t *testing.T) {
	e := NewSession("id", "", t0)
	if _, err := Encode(e); !errors.Is(err, ErrMissingField) {
		t.Fatalf("Encode of a session without sid: %v, want ErrMissingField", err)
	}
}

func TestEncodeIsUTC(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	e := NewToken("id", "j", t0.In(paris).Add(time.Minute), t0.In(paris))
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("+01:00")) || !bytes.Contains(b, []byte(`"issued_at":"2026-11-22T10:00:00.5Z"`)) {
		t.Fatalf("times not written as UTC: %s", b)
	}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		kind  Kind
		value string
		want  string
	}{
		{KindSubject, "alice", "revocations.sub.YWxpY2U"},
		{KindToken, "a.b*c>d e", "revocations.jti.YS5iKmM-ZCBl"},
		{KindSession, "s", "revocations.sid.cw"},
		{KindKey, "../../etc/passwd", "revocations.kid.Li4vLi4vZXRjL3Bhc3N3ZA"},
	}
	for _, tt := range tests {
		got, err := Subject(tt.kind, tt.value)
		if err != nil || got != tt.want {
			t.Fatalf("Subject(%s, %q) = %q, %v; want %q", tt.kind, tt.value, got, err, tt.want)
		}
		kind, value, err := ParseSubject(got)
		if err != nil || kind != tt.kind || value != tt.value {
			t.Fatalf("ParseSubject(%q) = %s, %q, %v", got, kind, value, err)
		}
	}
	for _, bad := range []string{"", "revocations", "revocations.jti", "x.jti.YQ", "revocations.tenant.YQ", "revocations.jti.!!", "revocations.jti.YQ.x"} {
		if _, _, err := ParseSubject(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSubject(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
	// Scoped to an issuer: the issuer's base64url after the value.
	got, err := IssuerSubject("https://idp.example", KindSession, "s")
	if want := "revocations.sid.cw.aHR0cHM6Ly9pZHAuZXhhbXBsZQ"; err != nil || got != want {
		t.Fatalf("IssuerSubject = %q, %v; want %q", got, err, want)
	}
	if iss, kind, value, err := ParseIssuerSubject(got); err != nil || iss != "https://idp.example" || kind != KindSession || value != "s" {
		t.Fatalf("ParseIssuerSubject(%q) = %q, %s, %q, %v", got, iss, kind, value, err)
	}
	if e := NewSession("x", "s", t0).ForIssuer("https://idp.example"); !e.OnSubject(got) || NewSession("x", "s", t0).OnSubject(got) {
		t.Fatalf("OnSubject: a scoped event is on %q and an unscoped one is not", got)
	}
	if _, _, err := ParseSubject(got); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseSubject(scoped %q) error = %v, want ErrInvalid", got, err)
	}
	// A scope's subject names its claim, then its value, then the issuer.
	scope, err := NewScope("x", "email", "a@b", t0, t0).ForIssuer("https://idp.example").Subject()
	if want := "revocations.scope.ZW1haWw.YUBi.aHR0cHM6Ly9pZHAuZXhhbXBsZQ"; err != nil || scope != want {
		t.Fatalf("scope subject = %q, %v; want %q", scope, err, want)
	}
	if iss, claim, value, err := ParseScopeSubject(scope); err != nil || iss != "https://idp.example" || claim != "email" || value != "a@b" {
		t.Fatalf("ParseScopeSubject(%q) = %q %q %q %v", scope, iss, claim, value, err)
	}
	if _, _, _, err := ParseIssuerSubject(scope); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseIssuerSubject of a scope subject: %v, want refused", err)
	}
	if _, err := Subject(KindScope, "x"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Subject(KindScope): %v, want refused (the claim is needed)", err)
	}
	if !NewScope("x", "email", "a@b", t0, t0).OnSubject("revocations.scope.ZW1haWw.YUBi") {
		t.Error("OnSubject of an unscoped scope subject")
	}
	for _, bad := range []string{"revocations.scope.ZW1haWw", "revocations.scope.c3Vi.YQ", "revocations.scope.ZW1haWw.YUBi.", "revocations.scope.ZW1haWw.!"} {
		if _, _, _, err := ParseScopeSubject(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseScopeSubject(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if plain, _ := IssuerSubject("", KindSession, "s"); plain != "revocations.sid.cw" {
		t.Errorf("IssuerSubject without an issuer = %q", plain)
	}
	for _, bad := range []string{"revocations.sid.cw.", "revocations.sid.cw.!!", "revocations.sid.cw.YQ.YQ", "revocations.sid.cw.Cg"} {
		if _, _, _, err := ParseIssuerSubject(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseIssuerSubject(%q) error = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := Subject("tenant", "x"); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("Subject of unknown kind: %v", err)
	}
}

func TestHoldUntil(t *testing.T) {
	life, leeway := 5*time.Minute, 2*time.Second
	evs := validEvents()
	tests := []struct {
		e    Event
		want time.Time
	}{
		{evs[0], evs[0].Expiry.Add(leeway)},
		{evs[1], t0.Add(life + leeway + MaxFutureSkew)},
		{evs[2], evs[2].Epoch.Add(life + leeway)},
		{evs[3], time.Time{}},
	}
	for _, tt := range tests {
		if got := tt.e.HoldUntil(life, leeway); !got.Equal(tt.want) {
			t.Errorf("%s: HoldUntil = %v, want %v", tt.e.Kind, got, tt.want)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, e := range validEvents() {
		data, err := Encode(e)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(string(e.Kind), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := Decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// decodeReference is the encoding/json-based Decode this package had before
// the hand-written scanner, kept as the oracle of FuzzDecodeDifferential.
func decodeReference(b []byte) (Event, error) {
	if len(b) > MaxEventSize {
		return Event{}, ErrTooLarge
	}
	if !utf8.Valid(b) {
		return Event{}, fmt.Errorf("%w: not valid utf-8", ErrBadValue)
	}
	var w struct {
		Event
		Version *int `json:"v"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Event{}, referenceVersionOr(b, fmt.Errorf("%w: %s", ErrMalformed, shorten(err.Error())))
	}
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, fmt.Errorf("%w: data after the event", ErrMalformed)
	}
	if w.Version == nil {
		return Event{}, fmt.Errorf("%w: v", ErrMissingField)
	}
	e := w.Event
	e.Version = *w.Version
	e.IssuedAt, e.Expiry, e.Epoch = utc(e.IssuedAt), utc(e.Expiry), utc(e.Epoch)
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// referenceVersionOr returns ErrUnsupportedVersion if b names a version
// other than this one, and err otherwise.
func referenceVersionOr(b []byte, err error) error {
	var head struct {
		Version *int `json:"v"`
	}
	if json.Unmarshal(b, &head) == nil && head.Version != nil && *head.Version != Version {
		return fmt.Errorf("%w: %d", ErrUnsupportedVersion, *head.Version)
	}
	return err
}

// TestDecodeSpellings checks that any valid JSON spelling of an event decodes
// to it, and that the encoding/json-based reference agrees.
func TestDecodeSpellings(t *testing.T) {
	evs := validEvents()
	key, tok := evs[3], evs[0]
	paris := time.FixedZone("", 3600)
	surrogate := key
	surrogate.Reason = "bye 😀"
	tests := []struct {
		name string
		in   string
		want Event
	}{
		{"canonical", `{"v":1,"id":"key.0001","kind":"key","issued_at":"2026-11-22T10:00:00.5Z","kid":"2026-11-a","reason":"compromised","initiator":"ops"}`, key},
		{"whitespace", " \t\r\n{ \"v\" :\n1 ,\t\"id\"\r: \"key.0001\" , \"kind\":\"key\",\"issued_at\":\"2026-11-22T10:00:00.5Z\",\"kid\":\"2026-11-a\",\"reason\":\"compromised\",\"initiator\":\"ops\"\n}\n\t ", key},
		{"reordered", `{"initiator":"ops","reason":"compromised","kid":"2026-11-a","issued_at":"2026-11-22T10:00:00.5Z","kind":"key","id":"key.0001","v":1}`, key},
		{"escaped values", `{"v":1,"id":"key\u002e0001","kind":"\u006bey","issued_at":"2026-11-22T10:00:00.5Z","kid":"2026-11-a","reason":"compromised","initiator":"o\u0070s"}`, key},
		{"escaped keys", `{"\u0076":1,"i\u0064":"key.0001","kind":"key","issued_at":"2026-11-22T10:00:00.5Z","\u006bid":"2026-11-a","reason":"compromised","initiator":"ops"}`, key},
		{"surrogate pair", `{"v":1,"id":"key.0001","kind":"key","issued_at":"2026-11-22T10:00:00.5Z","kid":"2026-11-a","reason":"bye \ud83d\ude00","initiator":"ops"}`, surrogate},
		{"raw utf-8", `{"v":1,"id":"key.0001","kind":"key","issued_at":"2026-11-22T10:00:00.5Z","kid":"2026-11-a","reason":"bye 😀","initiator":"ops"}`, surrogate},
		{"offset times", `{"v":1,"id":"tok.5f0c","kind":"token","issued_at":"2026-11-22T11:00:00.5+01:00","jti":"a1b2c3","exp":"` + tok.Expiry.In(paris).Format(time.RFC3339Nano) + `"}`, tok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !got.Equal(tt.want) {
				t.Fatalf("Decode = %+v, want %+v", got, tt.want)
			}
			if got.IssuedAt.Location() != time.UTC || got.Expiry.Location() != time.UTC || got.Epoch.Location() != time.UTC {
				t.Fatalf("times not in UTC: %+v", got)
			}
			ref, err := decodeReference([]byte(tt.in))
			if err != nil || !ref.Equal(got) {
				t.Fatalf("reference decoder disagrees: %+v, %v", ref, err)
			}
		})
	}
}

// TestDecodeStrict pins down what Decode refuses beyond encoding/json
// (duplicate keys, keys in another case, nulls) and how it reads v, each
// against the reference decoder.
func TestDecodeStrict(t *testing.T) {
	const rest = `"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"`
	tests := []struct {
		name string
		in   string
		want error
		// ref is the encoding/json reference's error: nil for the
		// strictnesses it did not have.
		ref error
	}{
		{"duplicate key", `{"v":1,` + rest + `,"kid":"k2"}`, errDuplicateKey, nil},
		{"duplicate v", `{"v":1,"v":1,` + rest + `}`, errDuplicateKey, nil},
		{"duplicate v of another version", `{"v":2,"v":1,` + rest + `}`, errDuplicateKey, nil},
		{"key in upper case", `{"v":1,"id":"a","KIND":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, errKeyCase, nil},
		{"V in upper case", `{"V":1,` + rest + `}`, errKeyCase, nil},
		{"kelvin sign folds to k", `{"v":1,"id":"a","\u212aind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, errKeyCase, nil},
		{"null string", `{"v":1,` + rest + `,"reason":null}`, errNull, nil},
		{"null time", `{"v":1,` + rest + `,"exp":null}`, errNull, nil},
		{"null v", `{"v":null,` + rest + `}`, errNull, ErrMissingField},
		{"v 1.0", `{"v":1.0,` + rest + `}`, ErrMalformed, ErrMalformed},
		{"v 1e0", `{"v":1e0,` + rest + `}`, ErrMalformed, ErrMalformed},
		{"v true", `{"v":true,` + rest + `}`, ErrMalformed, ErrMalformed},
		{"v -0", `{"v":-0,` + rest + `}`, ErrUnsupportedVersion, ErrUnsupportedVersion},
		{"v max int64", `{"v":9223372036854775807,` + rest + `}`, ErrUnsupportedVersion, ErrUnsupportedVersion},
		{"v min int64", `{"v":-9223372036854775808,` + rest + `}`, ErrUnsupportedVersion, ErrUnsupportedVersion},
		{"v beyond int64", `{"v":9223372036854775808,` + rest + `}`, ErrMalformed, ErrMalformed},
		{"v below int64", `{"v":-9223372036854775809,` + rest + `}`, ErrMalformed, ErrMalformed},
		{"v 01", `{"v":01,` + rest + `}`, ErrMalformed, ErrMalformed},
		{"v 2 with an unknown field", `{"v":2,` + rest + `,"tenant":"t"}`, ErrUnsupportedVersion, ErrUnsupportedVersion},
		{"v 2 with a wrong type", `{"v":2,"id":5,"kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`, ErrUnsupportedVersion, ErrUnsupportedVersion},
		{"v 2 with a bad time", `{"v":2,"id":"a","kind":"key","issued_at":"soon","kid":"k"}`, ErrUnsupportedVersion, ErrUnsupportedVersion},
		{"v 2 with trailing data", `{"v":2,` + rest + `,"tenant":"t"} x`, ErrMalformed, ErrMalformed},
		{"v 2 with bad syntax", `{"v":2,` + rest + `,"tenant":}`, ErrMalformed, ErrMalformed},
		{"number for a string", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":7}`, ErrMalformed, ErrMalformed},
		{"object for a time", `{"v":1,"id":"a","kind":"key","issued_at":{},"kid":"k"}`, ErrMalformed, ErrMalformed},
		{"escaped time", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00\u005a","kid":"k"}`, ErrMalformed, ErrMalformed},
		{"nested unknown", `{"v":1,` + rest + `,"x":{"a":[1,2,{"b":null}],"c":"\u00e9"}}`, ErrMalformed, ErrMalformed},
		{"bad escape", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"\x"}`, ErrMalformed, ErrMalformed},
		{"short unicode escape", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"\u12"}`, ErrMalformed, ErrMalformed},
		{"raw tab in a string", "{\"v\":1,\"id\":\"a\",\"kind\":\"key\",\"issued_at\":\"2026-11-22T10:00:00Z\",\"kid\":\"a\tb\"}", ErrMalformed, ErrMalformed},
		{"escaped control character", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"a\tb"}`, ErrBadValue, ErrBadValue},
		{"lone surrogate is U+FFFD", `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"\ud800"}`, nil, nil},
		{"trailing comma", `{"v":1,` + rest + `,}`, ErrMalformed, ErrMalformed},
		{"missing colon", `{"v" 1,` + rest + `}`, ErrMalformed, ErrMalformed},
		{"unterminated", `{"v":1,` + rest, ErrMalformed, ErrMalformed},
		{"empty object", `{}`, ErrMissingField, ErrMissingField},
		{"null with spaces", " null\n", ErrMissingField, ErrMissingField},
		{"null then more", `null null`, ErrMalformed, ErrMalformed},
		{"nul", `nul`, ErrMalformed, ErrMalformed},
		{"string", `"v"`, ErrMalformed, ErrMalformed},
		{"whitespace only", " \n", ErrMalformed, ErrMalformed},
		{"byte order mark", "\ufeff{\"v\":1," + rest + "}", ErrMalformed, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.in))
			ref, refErr := decodeReference([]byte(tt.in))
			if tt.want == nil {
				if err != nil || !e.Equal(ref) || refErr != nil {
					t.Fatalf("Decode = %+v, %v; reference %+v, %v", e, err, ref, refErr)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
			if !e.Equal(Event{}) {
				t.Fatalf("Decode returned a partial event %+v with its error", e)
			}
			if tt.ref == nil && refErr != nil {
				t.Fatalf("reference refused too (%v): not a strictness of the new decoder", refErr)
			}
			if tt.ref != nil && !errors.Is(refErr, tt.ref) {
				t.Fatalf("reference error = %v, want %v", refErr, tt.ref)
			}
		})
	}
}

// TestDecodeAllocs keeps Decode's allocations bounded: the strings of an
// event share one allocation.
func TestDecodeAllocs(t *testing.T) {
	for _, e := range validEvents() {
		b, err := Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _, _ = Decode(b) }); n > 4 {
			t.Errorf("%s: Decode allocates %v times, want <= 4", e.Kind, n)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"-1", -1, true}, {"-0", 0, true},
		{strconv.FormatInt(math.MaxInt64, 10), math.MaxInt64, true},
		{strconv.FormatInt(math.MinInt64, 10), math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"18446744073709551616", 0, false}, {"99999999999999999999", 0, false},
		{"1.0", 0, false}, {"1e0", 0, false}, {"-", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseInt([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if n, err := strconv.ParseInt(tt.in, 10, 64); (err == nil) != ok || err == nil && n != got {
			t.Errorf("parseInt(%q) disagrees with strconv.ParseInt: %d, %v", tt.in, n, err)
		}
	}
}

// TestReissued: a republished event holds at least as long as a fresh one
// would, and revokes nothing more.
func TestReissued(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	later := t0.Add(10 * time.Minute)
	tests := []struct {
		name string
		ev   Event
		now  time.Time
		want time.Time // IssuedAt after
	}{
		{name: "session republished later", ev: NewSession("e", "s", t0), now: later, want: later},
		{name: "subject keeps its epoch", ev: NewSubject("e", "u", t0, t0), now: later, want: later},
		{name: "clock behind keeps issued_at", ev: NewSession("e", "s", later), now: t0, want: later},
	}
	for _, tt := range tests {
		got := tt.ev.Reissued(tt.now)
		if !got.IssuedAt.Equal(tt.want) || got.ID != tt.ev.ID || got.Value() != tt.ev.Value() ||
			!got.Epoch.Equal(tt.ev.Epoch) || !got.Expiry.Equal(tt.ev.Expiry) {
			t.Errorf("%s: Reissued = %+v", tt.name, got)
		}
		if hold, fresh := got.HoldUntil(time.Hour, 0), tt.ev.HoldUntil(time.Hour, 0); hold.Before(fresh) {
			t.Errorf("%s: hold %s before the original's %s", tt.name, hold, fresh)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestValidValue: the one rule for identifiers a revocation can name, for
// every kind: empty, too long, invalid UTF-8 and control characters (C0,
// DEL, C1) are refused; printable UTF-8 up to MaxValueLen is accepted.
func TestValidValue(t *testing.T) {
	tests := []struct {
		name    string
		value   string
		wantErr error
	}{
		{name: "ascii", value: "user-42"},
		{name: "unicode", value: "jürgen ſ K"},
		{name: "longest", value: strings.Repeat("a", MaxValueLen)},
		{name: "empty", value: "", wantErr: ErrMissingField},
		{name: "too long", value: strings.Repeat("a", MaxValueLen+1), wantErr: ErrBadValue},
		{name: "nul", value: "a\x00b", wantErr: ErrBadValue},
		{name: "newline", value: "a\nb", wantErr: ErrBadValue},
		{name: "del", value: "a\x7fb", wantErr: ErrBadValue},
		{name: "c1 control", value: "a\u0085b", wantErr: ErrBadValue},
		{name: "invalid utf-8", value: "a\xffb", wantErr: ErrBadValue},
	}
	for _, k := range Kinds() {
		for _, tt := range tests {
			t.Run(string(k)+"/"+tt.name, func(t *testing.T) {
				err := ValidValue(k, tt.value)
				if !errors.Is(err, tt.wantErr) || (tt.wantErr != nil && !errors.Is(err, ErrInvalid)) {
					t.Fatalf("ValidValue = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
	if err := ValidValue("tenant", "x"); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
}

// BenchmarkSubjectCheck: the check a consumer runs on every message, OnSubject,
// beside the baseline of building the subject and comparing.
func BenchmarkSubjectCheck(b *testing.B) {
	now := time.Now()
	e := NewToken("rev.b", "0123456789abcdefghijkl", now.Add(time.Hour), now)
	subj, err := e.Subject()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("built", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s, err := e.Subject(); err != nil || s != subj {
				b.Fatal("mismatch")
			}
		}
	})
	b.Run("OnSubject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !e.OnSubject(subj) {
				b.Fatal("mismatch")
			}
		}
	})
}
