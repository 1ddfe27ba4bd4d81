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
// issuer signed. Its seeds (a token signed at test time among them, so they
// cannot be files) are added here and replayed by every `go test`.
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
		if refused(t, c, err) {
			return
		}
		if raw != good {
			// The only token that can verify is one the issuer signed; a
			// fuzzer that found another has found a forgery.
			t.Fatalf("accepted a token the issuer did not sign: %q", raw)
		}
	})
}

// FuzzCheckProviders feeds arbitrary strings to a Checker trusting two
// issuers, which reads a token's iss before its signature to choose the
// issuer's rules: never a panic, never claims with an error, never a token
// accepted but the two each issuer signed, each under its own issuer.
func FuzzCheckProviders(f *testing.F) {
	own := verifiertest.NewIssuer(f)
	idp := verifiertest.NewIssuer(f, verifiertest.WithIssuer("https://idp.example.test"), verifiertest.WithAlgorithm(ES256))
	keys := func(i *verifiertest.Issuer) KeySource {
		k, err := StaticKeys(Key{ID: i.KeyID(), Algorithm: i.Algorithm(), Public: i.PublicKey()})
		if err != nil {
			f.Fatal(err)
		}
		return k
	}
	k, err := NewChecker(keys(own), CheckerConfig{
		Issuer: own.Issuer(), Audiences: []string{own.Audience()}, Algorithms: []string{own.Algorithm()},
		Providers:       []Provider{{Name: "idp", Issuer: idp.Issuer(), Keys: keys(idp), Audiences: []string{idp.Audience()}, Algorithms: []string{ES256}}},
		TokenCacheBytes: -1,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(k.Close)
	signed := map[string]string{
		own.Token(f, verifiertest.TokenOptions{}): own.Issuer(),
		idp.Token(f, verifiertest.TokenOptions{}): idp.Issuer(),
	}
	for raw := range signed {
		f.Add(raw)
		parts := strings.Split(raw, ".")
		f.Add(parts[0] + "." + parts[1] + ".")        // no signature
		f.Add(parts[0] + ".e30." + parts[2])          // empty claims
		f.Add(parts[0] + ".eyJpc3MiOjF9." + parts[2]) // {"iss":1}
	}
	f.Add("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ.eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLnRlc3QiLCJpc3MiOiJ4In0.AA") // iss twice
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := k.Check(context.Background(), raw)
		if refused(t, c, err) {
			return
		}
		if iss, ok := signed[raw]; !ok || c.Issuer != iss {
			t.Fatalf("accepted %q as a token of %q", raw, c.Issuer)
		}
	})
}

// refused reports whether a check refused the token, failing t unless the
// refusal is well-formed: no claims, and an error in one of the two classes.
func refused(t *testing.T, c *Claims, err error) bool {
	t.Helper()
	if err == nil {
		return false
	}
	if c != nil {
		t.Fatalf("claims returned with error %v", err)
	}
	if !errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v is in neither class", err)
	}
	return true
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

// FuzzLogoutToken feeds arbitrary strings to a LogoutChecker: never a panic,
// never a logout token with an error, never one accepted but the provider
// signed; an accepted one always names a sub or a sid and a jti.
func FuzzLogoutToken(f *testing.F) {
	idp := verifiertest.NewIssuer(f, verifiertest.WithIssuer("https://idp.example.test"), verifiertest.WithAlgorithm(ES256))
	keys, err := StaticKeys(Key{ID: idp.KeyID(), Algorithm: ES256, Public: idp.PublicKey()})
	if err != nil {
		f.Fatal(err)
	}
	k, err := NewLogoutChecker(LogoutConfig{Issuer: idp.Issuer(), ClientID: "c", Keys: keys, Algorithms: []string{ES256}})
	if err != nil {
		f.Fatal(err)
	}
	signed := map[string]bool{
		idp.LogoutToken(f, verifiertest.LogoutOptions{ClientID: "c", SessionID: "s"}):                                      true,
		idp.LogoutToken(f, verifiertest.LogoutOptions{ClientID: "c", Subject: "alice"}):                                    true,
		idp.LogoutToken(f, verifiertest.LogoutOptions{ClientID: "c", SessionID: "s", Extra: map[string]any{"nonce": "n"}}): true,
		idp.Token(f, verifiertest.TokenOptions{Extra: map[string]any{"aud": "c"}}):                                         true,
	}
	for raw := range signed {
		f.Add(raw)
		parts := strings.Split(raw, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".e30." + parts[2])
	}
	f.Add("")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		lt, err := k.Check(context.Background(), raw)
		if err != nil {
			if lt != nil || (!errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrUnavailable)) {
				t.Fatalf("Check(%q) = %+v, %v", raw, lt, err)
			}
			return
		}
		if !signed[raw] || (lt.Subject == "" && lt.SessionID == "") || lt.ID == "" {
			t.Fatalf("accepted %q: %+v", raw, lt)
		}
	})
}

// FuzzSET feeds arbitrary strings to a SETChecker: never a panic, never a
// SET with an error, never one accepted but the transmitter signed, and an
// accepted one always has one event type, an object event and a jti.
func FuzzSET(f *testing.F) {
	idp := verifiertest.NewIssuer(f, verifiertest.WithIssuer("https://idp.example.test"), verifiertest.WithAlgorithm(ES256))
	keys, err := StaticKeys(Key{ID: idp.KeyID(), Algorithm: ES256, Public: idp.PublicKey()})
	if err != nil {
		f.Fatal(err)
	}
	k, err := NewSETChecker(SETConfig{Issuer: idp.Issuer(), Audience: "r", Keys: keys, Algorithms: []string{ES256}})
	if err != nil {
		f.Fatal(err)
	}
	ev := "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	signed := map[string]bool{
		idp.SET(f, verifiertest.SETOptions{Audience: "r", EventType: ev, SubjectID: map[string]any{"format": "opaque", "id": "x"}}): true,
		idp.SET(f, verifiertest.SETOptions{Audience: "r", EventType: ev, Extra: map[string]any{"sub": "alice"}}):                    true,
		idp.LogoutToken(f, verifiertest.LogoutOptions{ClientID: "r", SessionID: "s"}):                                               true,
	}
	for raw := range signed {
		f.Add(raw)
		parts := strings.Split(raw, ".")
		f.Add(parts[0] + ".e30." + parts[2])
	}
	f.Fuzz(func(t *testing.T, raw string) {
		set, err := k.Check(context.Background(), raw)
		if err != nil {
			if set != nil || (!errors.Is(err, ErrInvalidToken) && !errors.Is(err, ErrUnavailable)) {
				t.Fatalf("Check(%q) = %+v, %v", raw, set, err)
			}
			return
		}
		if !signed[raw] || set.EventType == "" || set.ID == "" || len(set.Event) == 0 || set.Event[0] != '{' {
			t.Fatalf("accepted %q: %+v", raw, set)
		}
	})
}
