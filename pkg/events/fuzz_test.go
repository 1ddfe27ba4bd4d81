package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
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

// FuzzParseSubject checks ParseIssuerSubject never panics and inverts
// IssuerSubject, and ParseSubject reads exactly the unscoped subjects.
func FuzzParseSubject(f *testing.F) {
	f.Add("revocations.sub.YWxpY2U")
	f.Add("revocations.jti.")
	f.Add("revocations..x")
	f.Add("revocations.sid.cw.aHR0cHM6Ly9pZHAuZXhhbXBsZQ")
	f.Add("revocations.sid.cw.")
	f.Fuzz(func(t *testing.T, s string) {
		iss, kind, value, err := ParseIssuerSubject(s)
		if err != nil {
			return
		}
		again, err := IssuerSubject(iss, kind, value)
		if err != nil {
			t.Fatalf("IssuerSubject(%q, %s, %q): %v", iss, kind, value, err)
		}
		i2, k2, v2, err := ParseIssuerSubject(again)
		if err != nil || i2 != iss || k2 != kind || v2 != value {
			t.Fatalf("round trip of %q: %q %s %q %v", s, i2, k2, v2, err)
		}
		if _, _, err := ParseSubject(s); (err == nil) != (iss == "") {
			t.Fatalf("ParseSubject(%q) error %v, issuer %q", s, err, iss)
		}
	})
}

// FuzzDecodeDifferential compares Decode with decodeReference, the
// encoding/json-based decoder it replaced. When the reference refuses, Decode
// refuses too, with the same sentinel unless the input has one of the
// strictnesses below; when the reference accepts, Decode accepts an equal
// event, or refuses because the input has a duplicate key, a key in another
// case or a null value, and says so.
func FuzzDecodeDifferential(f *testing.F) {
	for _, b := range differentialSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		ref, refErr := decodeReference(b)
		if err != nil && (!errors.Is(err, ErrInvalid) || !e.Equal(Event{})) {
			t.Fatalf("Decode returned %+v, %v: want the zero event and an ErrInvalid", e, err)
		}
		strict := strictness(b)
		if refErr != nil {
			if err == nil {
				t.Fatalf("Decode accepted %+v, the reference refused: %v", e, refErr)
			}
			if strict != "" {
				return
			}
			for _, s := range sentinels() {
				if errors.Is(refErr, s) && !errors.Is(err, s) {
					t.Fatalf("Decode error %v, the reference's %v", err, refErr)
				}
			}
			return
		}
		if strict != "" {
			if !errors.Is(err, errDuplicateKey) && !errors.Is(err, errKeyCase) && !errors.Is(err, errNull) {
				t.Fatalf("input has %s, reference accepted it; Decode must refuse it for that, got %v", strict, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Decode refused what the reference accepted (%+v): %v", ref, err)
		}
		if !e.Equal(ref) {
			t.Fatalf("Decode and the reference disagree:\n got %+v\nwant %+v", e, ref)
		}
	})
}

func sentinels() []error {
	return []error{ErrTooLarge, ErrMalformed, ErrUnsupportedVersion, ErrUnknownKind, ErrMissingField, ErrUnexpectedField, ErrBadValue, ErrBadTime}
}

// strictness says, using encoding/json's tokenizer, whether the top-level
// object in b has a field of the contract twice, a key equal to a field only
// up to case, or a null for a field: what Decode refuses and the reference
// accepted. It returns "" when b has none of these or is not an object.
func strictness(b []byte) string {
	var names []string
	for f := range numFields {
		names = append(names, fieldName(f))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return ""
		}
		switch {
		case slices.Contains(names, key) && seen[key]:
			return "a duplicate key"
		case slices.Contains(names, key) && string(raw) == "null":
			return "a null value"
		case !slices.Contains(names, key) && slices.ContainsFunc(names, func(n string) bool { return strings.EqualFold(n, key) }):
			return "a key in another case"
		}
		seen[key] = true
	}
	return ""
}

// differentialSeeds are FuzzDecode's seeds and other spellings of the same
// events: indented, keys reversed, strings and keys escaped.
func differentialSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, e := range validEvents() {
		b, err := Encode(e)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
		var ind bytes.Buffer
		if err := json.Indent(&ind, b, " ", "\t"); err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, append([]byte("\r\n"), ind.Bytes()...))
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			tb.Fatal(err)
		}
		keys := slices.Sorted(maps.Keys(m))
		slices.Reverse(keys)
		var rev bytes.Buffer
		rev.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				rev.WriteString(" , ")
			}
			rev.WriteString(`"` + k + `" : `)
			rev.Write(m[k])
		}
		rev.WriteString("}")
		seeds = append(seeds, rev.Bytes())
		esc := bytes.Replace(b, []byte(`"v":1`), []byte(`"\u0076":1`), 1)
		esc = bytes.Replace(esc, []byte(`"id":"`), []byte(`"id":"\u0061\u002e`), 1)
		esc = bytes.Replace(esc, []byte(`"reason":"`), []byte(`"reason":"\/\"\\ \u00e9 `), 1)
		seeds = append(seeds, esc)
		seeds = append(seeds, bytes.Replace(b, []byte(`"kind"`), []byte(`"Kind"`), 1))
		seeds = append(seeds, bytes.Replace(b, []byte(`}`), []byte(`,"reason":null}`), 1))
		seeds = append(seeds, bytes.Replace(b, []byte(`"v":1`), []byte(`"v":2,"x":[{"y":null}]`), 1))
	}
	for _, s := range []string{``, `{}`, `null`, `{"v":1}`, `{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"} x`,
		`{"v":1,"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`,
		`{"v":1,"id":"a","kind":"key","issued_at":"2026-11-22T11:00:00+01:00","kid":"\ud83d\ude00\ud800"}`,
		`{"v":1.0,"id":"a","kind":"key","issued_at":"2026-11-22T10:00:00Z","kid":"k"}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// FuzzOnSubject checks OnSubject against the subject Subject builds: true
// exactly for that string, for every kind and value, scoped (k&4) or not.
func FuzzOnSubject(f *testing.F) {
	f.Add(uint8(0), "alice", "revocations.jti.YWxpY2U")
	f.Add(uint8(2), "alice", "revocations.sub.YWxpY2U")
	f.Add(uint8(1), "ab", "revocations.sid.YWI")
	f.Add(uint8(1), "abcd", "revocations.sid.YWJjZA")
	f.Add(uint8(3), "k-1", "revocations.kid.ay0x")
	f.Add(uint8(3), "k-1", "revocations.kid.ay0")
	f.Add(uint8(0), "é?>", "revocations.jti.w6k_Pg")
	f.Add(uint8(5), "s", "revocations.sid.cw.aHR0cHM6Ly9pZHAuZXhhbXBsZS9z")
	f.Add(uint8(5), "s", "revocations.sid.cw")
	f.Add(uint8(8), "a@b", "revocations.scope.ZW1haWw.YUBi")
	f.Add(uint8(12), "a@b", "revocations.scope.ZW1haWw.YUBi.aHR0cHM6Ly9pZHAuZXhhbXBsZS9hQGI")
	f.Fuzz(func(t *testing.T, k uint8, value, subj string) {
		now := time.Unix(1_800_000_000, 0)
		var e Event
		if k&8 != 0 {
			e = NewScope("rev.f", "email", value, now, now)
		} else {
			switch k % 4 {
			case 0:
				e = NewToken("rev.f", value, now.Add(time.Minute), now)
			case 1:
				e = NewSession("rev.f", value, now)
			case 2:
				e = NewSubject("rev.f", value, now, now)
			default:
				e = NewKey("rev.f", value, now)
			}
		}
		if k&4 != 0 {
			e = e.ForIssuer("https://idp.example/" + value)
		}
		want, err := e.Subject()
		if err != nil {
			return // not a revocable value: Decode never returns such an event
		}
		if !e.OnSubject(want) {
			t.Fatalf("OnSubject(%q) = false for its own subject", want)
		}
		if got := e.OnSubject(subj); got != (subj == want) {
			t.Fatalf("OnSubject(%q) = %t, subject is %q", subj, got, want)
		}
	})
}

// FuzzParseScopeSubject checks ParseScopeSubject never panics and inverts
// ScopeSubject.
func FuzzParseScopeSubject(f *testing.F) {
	f.Add("revocations.scope.ZW1haWw.YUBi")
	f.Add("revocations.scope.ZW1haWw.YUBi.aHR0cHM6Ly9pZHAuZXhhbXBsZQ")
	f.Add("revocations.scope.c3Vi.YQ")
	f.Add("revocations.sub.YQ")
	f.Fuzz(func(t *testing.T, s string) {
		iss, claim, value, err := ParseScopeSubject(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		again, err := ScopeSubject(iss, claim, value)
		if err != nil {
			t.Fatalf("ScopeSubject(%q, %q, %q): %v", iss, claim, value, err)
		}
		i2, c2, v2, err := ParseScopeSubject(again)
		if err != nil || i2 != iss || c2 != claim || v2 != value {
			t.Fatalf("round trip of %q: %q %q %q %v", again, i2, c2, v2, err)
		}
	})
}
