package verifier

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, never
// return claims with an error, and never accept anything but tokens the
// issuer signed. Seeds are in testdata/fuzz/FuzzVerify and replayed by every
// `go test`.
func FuzzVerify(f *testing.F) {
	e := newEnv(f)
	v := e.verifier(f, nil)
	good := e.iss.Token(f, verifiertest.TokenOptions{})
	f.Add(good)
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(strings.Repeat("A", 9000))
	f.Add(good + "." + good)
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), raw)
		if err != nil {
			if c != nil {
				t.Fatalf("claims returned with error %v", err)
			}
			if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrUnavailable) {
				t.Fatalf("error %v is in neither class", err)
			}
			return
		}
		if raw != good {
			// The only token that can verify is one the issuer signed; a
			// fuzzer that found another has found a forgery.
			t.Fatalf("accepted a token the issuer did not sign: %q", raw)
		}
	})
}

// FuzzParseNumericDate checks the exact iat/exp reader against itself:
// never a panic, never a negative or absurd time.
func FuzzParseNumericDate(f *testing.F) {
	for _, s := range []string{"1763812854", "1763812854.123456789", "1763812854.1234567891234", "1.7e9", "-1", "1e400", "", ".5", "5.", "00012"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseNumericDate(s)
		if err != nil {
			return
		}
		if d.Unix() < 0 || d.Unix() > 1e11 {
			t.Fatalf("parseNumericDate(%q) = %v: out of range", s, d)
		}
	})
}
