package events

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 500_000_000, time.UTC)

func validEvents() []Event {
	sub := NewSubject("sub.77aa", "alice", t0.Add(-377*time.Millisecond+123456789), t0)
	sub.Reason = "logout_all"
	key := NewKey("key.0001", "2026-11-a", t0)
	key.Reason, key.Initiator = "compromised", "ops"
	ses := NewSession("ses.9e1d", "s-42", t0)
	ses.Reason = "logout"
	return []Event{
		NewToken("tok.5f0c", "a1b2c3", t0.Add(5*time.Minute), t0),
		ses, sub, key,
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
