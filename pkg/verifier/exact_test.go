package verifier

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// rawSigner signs header and claims given as exact JSON bytes, which maps
// cannot express (duplicate keys, key order, escapes, invalid UTF-8).
type rawSigner struct {
	priv ed25519.PrivateKey
	kid  string
}

func newRawSigner(tb testing.TB) (*rawSigner, Key) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawSigner{priv: priv, kid: "raw-key"}
	return s, Key{ID: s.kid, Algorithm: EdDSA, Public: pub}
}

func (s *rawSigner) sign(tb testing.TB, header, claims string) string {
	tb.Helper()
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	sig, err := jwt.SigningMethodEdDSA.Sign(signing, s.priv)
	if err != nil {
		tb.Fatal(err)
	}
	return signing + "." + enc.EncodeToString(sig)
}

// TestExactNames: the header and every claim the verifier uses are read by
// their exact name. encoding/json would match "ſub" (U+017F), "Sub", "SUB"
// or "\u212aid" (Kelvin sign) to sub and kid, and let the last of two equal
// names win; a token relying on either is read as it is spelt, and a token
// with a name twice is malformed.
func TestExactNames(t *testing.T) {
	e := newEnv(t)
	rs, key := newRawSigner(t)
	v := e.verifier(t, func(c *Config) {
		c.Keys, c.Algorithms = static(t, key), []string{EdDSA}
	})
	now := time.Now()
	iat := now.Add(-time.Second).Truncate(time.Microsecond)
	date := func(t time.Time) string { return fmt.Sprintf("%d.%06d", t.Unix(), t.Nanosecond()/1000) }
	std := fmt.Sprintf(`"iss":%q,"aud":%q,"iat":%s,"exp":%s`, e.iss.Issuer(), e.iss.Audience(), date(iat), date(now.Add(time.Minute)))
	header := `{"alg":"EdDSA","kid":"raw-key","typ":"at+jwt"}`

	tests := []struct {
		name    string
		header  string // default header when empty
		claims  string // members after the standard iss, aud, iat, exp
		wantErr error
		// on success:
		wantSub, wantSID, wantJTI string
	}{
		{name: "plain", claims: `"sub":"user-42","sid":"s1","jti":"j1"`, wantSub: "user-42", wantSID: "s1", wantJTI: "j1"},
		{name: "long s folded sub and sid after the real ones", claims: `"sub":"user-42","sid":"s1","jti":"j1","ſub":"admin","ſid":"decoy"`,
			wantSub: "user-42", wantSID: "s1", wantJTI: "j1"},
		{name: "long s folded sub and sid before the real ones", claims: `"ſub":"admin","ſid":"decoy","sub":"user-42","sid":"s1","jti":"j1"`,
			wantSub: "user-42", wantSID: "s1", wantJTI: "j1"},
		{name: "upper case after lower case", claims: `"sub":"user-42","Sub":"admin","SID":"decoy","jti":"j1","JTI":"j2"`,
			wantSub: "user-42", wantJTI: "j1"},
		{name: "escaped spelling of sub is sub", claims: `"s\u0075b":"user-42","jti":"j1"`, wantSub: "user-42", wantJTI: "j1"},
		{name: "only a long s sub", claims: `"ſub":"admin","jti":"j1"`, wantErr: ErrClaims},
		{name: "only an upper case sub", claims: `"SUB":"admin","jti":"j1"`, wantErr: ErrClaims},
		{name: "only an upper case jti", claims: `"sub":"user-42","JTI":"j1"`, wantErr: ErrClaims},
		{name: "folded exp only", claims: `"sub":"user-42","jti":"j1"`, wantErr: ErrClaims,
			// The standard members, with exp spelt EXP.
			header: "exp"},
		{name: "duplicate sub", claims: `"sub":"a","sub":"b","jti":"j1"`, wantErr: ErrMalformed},
		{name: "duplicate sub, same value", claims: `"sub":"a","sub":"a","jti":"j1"`, wantErr: ErrMalformed},
		{name: "duplicate sub by escape", claims: `"sub":"a","s\u0075b":"b","jti":"j1"`, wantErr: ErrMalformed},
		{name: "duplicate private claim", claims: `"sub":"a","jti":"j1","role":"user","role":"admin"`, wantErr: ErrMalformed},
		{name: "duplicate among many", claims: `"sub":"a","jti":"j1",` + manyMembers(40) + `,"m7":0`, wantErr: ErrMalformed},
		{name: "many distinct members", claims: `"sub":"a","jti":"j1",` + manyMembers(40), wantSub: "a", wantJTI: "j1"},
		{name: "invalid utf-8 in sub", claims: "\"sub\":\"a\xffb\",\"jti\":\"j1\"", wantErr: ErrMalformed},
		{name: "sub not a string", claims: `"sub":42,"jti":"j1"`, wantErr: ErrMalformed},
		{name: "sub null", claims: `"sub":null,"jti":"j1"`, wantErr: ErrClaims},

		{name: "header kid by Kelvin sign", header: `{"alg":"EdDSA","\u212aid":"raw-key"}`, claims: `"sub":"a","jti":"j1"`, wantErr: ErrHeader},
		{name: "header kid by literal Kelvin sign", header: `{"alg":"EdDSA","` + "\u212a" + `id":"raw-key"}`, claims: `"sub":"a","jti":"j1"`, wantErr: ErrHeader},
		{name: "header upper case alg", header: `{"ALG":"EdDSA","kid":"raw-key"}`, claims: `"sub":"a","jti":"j1"`, wantErr: ErrAlgorithm},
		{name: "header folded kid beside the real one", header: `{"alg":"EdDSA","kid":"raw-key","KID":"other"}`, claims: `"sub":"a","jti":"j1"`,
			wantSub: "a", wantJTI: "j1"},
		{name: "header duplicate kid", header: `{"alg":"EdDSA","kid":"raw-key","kid":"raw-key"}`, claims: `"sub":"a","jti":"j1"`, wantErr: ErrMalformed},
		{name: "header folded jku is refused too", header: `{"alg":"EdDSA","kid":"raw-key","JKU":"https://evil.example"}`, claims: `"sub":"a","jti":"j1"`, wantErr: ErrHeader},
		{name: "header Kelvin jku is refused too", header: `{"alg":"EdDSA","kid":"raw-key","j\u212au":"https://evil.example"}`, claims: `"sub":"a","jti":"j1"`, wantErr: ErrHeader},
		{name: "header not an object", header: `["alg","EdDSA"]`, claims: `"sub":"a","jti":"j1"`, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, members := tt.header, std
			switch h {
			case "":
				h = header
			case "exp":
				h, members = header, strings.Replace(std, `"exp"`, `"EXP"`, 1)
			}
			raw := rs.sign(t, h, "{"+members+","+tt.claims+"}")
			c, err := v.Verify(context.Background(), raw)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidToken) || c != nil {
					t.Fatalf("Verify = %+v, %v; want %v", c, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != tt.wantSub || c.SessionID != tt.wantSID || c.ID != tt.wantJTI {
				t.Fatalf("sub %q sid %q jti %q, want %q %q %q", c.Subject, c.SessionID, c.ID, tt.wantSub, tt.wantSID, tt.wantJTI)
			}
			if !c.IssuedAt.Equal(iat) {
				t.Fatalf("iat %v, want %v (sub-second precision kept)", c.IssuedAt, iat)
			}
		})
	}
}

// manyMembers returns n distinct members m0..m(n-1), enough to pass the
// small-object path of the duplicate check.
func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"m%d":%d`, i, i)
	}
	return b.String()
}

// TestRevocableIdentifiers: a token whose sub, sid or jti no revocation
// could name (what events.ValidValue refuses: control characters, C1
// controls, DEL, too long) is refused with ErrClaims, whether the character
// is written raw or escaped.
func TestRevocableIdentifiers(t *testing.T) {
	e := newEnv(t)
	rs, key := newRawSigner(t)
	v := e.verifier(t, func(c *Config) {
		c.Keys, c.Algorithms = static(t, key), []string{EdDSA}
	})
	now := time.Now()
	std := fmt.Sprintf(`"iss":%q,"aud":%q,"iat":%d,"exp":%d`, e.iss.Issuer(), e.iss.Audience(), now.Unix()-1, now.Unix()+60)
	long := strings.Repeat("x", 257)
	tests := []struct {
		name    string
		claims  string
		wantErr error
	}{
		{name: "printable unicode", claims: `"sub":"jürgen","sid":"s1","jti":"j1"`},
		{name: "sub with an escaped control", claims: `"sub":"a\u0001b","jti":"j1"`, wantErr: ErrClaims},
		{name: "sub with a newline", claims: `"sub":"a\nb","jti":"j1"`, wantErr: ErrClaims},
		{name: "sub with DEL", claims: "\"sub\":\"a\x7fb\",\"jti\":\"j1\"", wantErr: ErrClaims},
		{name: "sub with a C1 control", claims: `"sub":"a` + "\u0085" + `b","jti":"j1"`, wantErr: ErrClaims},
		{name: "sub with an escaped C1 control", claims: `"sub":"a\u009bb","jti":"j1"`, wantErr: ErrClaims},
		{name: "sub too long", claims: `"sub":"` + long + `","jti":"j1"`, wantErr: ErrClaims},
		{name: "sid with a control", claims: `"sub":"a","sid":"s\u0000","jti":"j1"`, wantErr: ErrClaims},
		{name: "sid with a C1 control", claims: `"sub":"a","sid":"s` + "\u0085" + `","jti":"j1"`, wantErr: ErrClaims},
		{name: "sid too long", claims: `"sub":"a","sid":"` + long + `","jti":"j1"`, wantErr: ErrClaims},
		{name: "jti with a tab", claims: `"sub":"a","jti":"j\t1"`, wantErr: ErrClaims},
		{name: "jti with DEL", claims: `"sub":"a","jti":"j\u007f"`, wantErr: ErrClaims},
		{name: "jti too long", claims: `"sub":"a","jti":"` + long + `"`, wantErr: ErrClaims},
		{name: "empty sid means none", claims: `"sub":"a","sid":"","jti":"j1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := rs.sign(t, `{"alg":"EdDSA","kid":"raw-key"}`, "{"+std+","+tt.claims+"}")
			c, err := v.Verify(context.Background(), raw)
			if !errors.Is(err, tt.wantErr) || (err != nil && (c != nil || !errors.Is(err, ErrInvalidToken))) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tt.wantErr)
			}
		})
	}
}
