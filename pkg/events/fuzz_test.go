package events

import (
	"errors"
	"testing"
)

// FuzzDecode checks that Decode never panics, that whatever it accepts is
// valid, and that decode(encode(e)) == e for every accepted event. Seeds live
// in testdata/fuzz/FuzzDecode and are replayed by every `go test`.
func FuzzDecode(f *testing.F) {
	for _, e := range validEvents() {
		b, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{``, `{}`, `null`, `{"v":1}`, `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode error %v does not wrap ErrInvalid", err)
			}
			if !e.Equal(Event{}) {
				t.Fatalf("partial event %+v returned with error %v", e, err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("Decode accepted an invalid event: %v", err)
		}
		enc, err := Encode(e)
		if err != nil {
			t.Fatalf("Encode of a decoded event: %v", err)
		}
		again, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(e)): %v", err)
		}
		if !again.Equal(e) {
			t.Fatalf("decode(encode(e)) != e:\n%+v\n%+v", again, e)
		}
		if _, err := e.Subject(); err != nil {
			t.Fatalf("valid event has no subject: %v", err)
		}
	})
}

// FuzzParseSubject checks ParseSubject never panics and inverts Subject.
func FuzzParseSubject(f *testing.F) {
	f.Add("revocations.sub.YWxpY2U")
	f.Add("revocations.jti.")
	f.Add("revocations..x")
	f.Fuzz(func(t *testing.T, s string) {
		kind, value, err := ParseSubject(s)
		if err != nil {
			return
		}
		again, err := Subject(kind, value)
		if err != nil {
			t.Fatalf("Subject(%s, %q): %v", kind, value, err)
		}
		k2, v2, err := ParseSubject(again)
		if err != nil || k2 != kind || v2 != value {
			t.Fatalf("round trip of %q: %s %q %v", s, k2, v2, err)
		}
	})
}
