package keyset

import (
	"crypto"
	"crypto/elliptic"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseJWKS(t *testing.T) {
	ed := jwkMaps(t, Key{ID: "ed", Public: newEd25519Key(t)})[0]
	ec := jwkMaps(t, Key{ID: "ec", Public: newECKey(t, elliptic.P256())})[0]
	rs := jwkMaps(t, Key{ID: "rs", Public: &newRSAKey(t, 2048, 0).PublicKey})[0]
	weakKey := newRSAKey(t, 1024, 0)
	weak := map[string]any{
		"kty": "RSA", "kid": "weak", "use": "sig",
		"n": base64.RawURLEncoding.EncodeToString(weakKey.N.Bytes()), "e": "AQAB",
	}
	// A P-256 point with y changed is (overwhelmingly likely) off the curve.
	yb, _ := base64.RawURLEncoding.DecodeString(ec["y"].(string))
	yb[31] ^= 1
	offCurve := with(ec, "y", base64.RawURLEncoding.EncodeToString(yb))

	tests := []struct {
		name     string
		doc      []byte
		wantKIDs []string
		wantErr  error
	}{
		{name: "ed25519", doc: setOf(t, ed), wantKIDs: []string{"ed"}},
		{name: "p-256", doc: setOf(t, ec), wantKIDs: []string{"ec"}},
		{name: "rsa", doc: setOf(t, rs), wantKIDs: []string{"rs"}},
		{name: "all three", doc: setOf(t, ed, ec, rs), wantKIDs: []string{"ed", "ec", "rs"}},
		{name: "no use and no alg", doc: setOf(t, with(ed, "use", nil, "alg", nil)), wantKIDs: []string{"ed"}},
		{name: "key_ops verify", doc: setOf(t, with(ed, "key_ops", []string{"verify"})), wantKIDs: []string{"ed"}},
		{name: "other members ignored", doc: setOf(t, with(rs, "x5t", "abc", "ext", true)), wantKIDs: []string{"rs"}},

		{name: "private ed25519", doc: setOf(t, with(ed, "d", ed["x"]), ec), wantErr: ErrInvalidJWKS},
		{name: "private rsa prime", doc: setOf(t, with(rs, "p", "AQAB"), ec), wantErr: ErrInvalidJWKS},
		{name: "symmetric secret", doc: setOf(t, map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}, ec), wantErr: ErrInvalidJWKS},
		{name: "private member on skipped key", doc: setOf(t, with(ed, "use", "enc", "d", ed["x"]), ec), wantErr: ErrInvalidJWKS},

		{name: "unsupported kty skipped", doc: setOf(t, map[string]any{"kty": "XYZ", "kid": "z"}, ed), wantKIDs: []string{"ed"}},
		{name: "unsupported crv skipped", doc: setOf(t, with(ec, "crv", "P-384", "kid", "p384"), ed), wantKIDs: []string{"ed"}},
		{name: "x25519 skipped", doc: setOf(t, with(ed, "crv", "X25519", "kid", "x"), ec), wantKIDs: []string{"ec"}},
		{name: "use enc skipped", doc: setOf(t, with(rs, "use", "enc"), ed), wantKIDs: []string{"ed"}},
		{name: "key_ops without verify skipped", doc: setOf(t, with(rs, "key_ops", []string{"encrypt"}), ed), wantKIDs: []string{"ed"}},
		{name: "unsupported alg skipped", doc: setOf(t, with(rs, "alg", "RS512"), ed), wantKIDs: []string{"ed"}},
		{name: "rsa 1024 skipped", doc: setOf(t, weak, ed), wantKIDs: []string{"ed"}},
		{name: "rsa 1024 alone", doc: setOf(t, weak), wantErr: ErrInvalidJWKS},
		{name: "only skipped keys", doc: setOf(t, with(rs, "use", "enc")), wantErr: ErrInvalidJWKS},

		{name: "empty set", doc: setOf(t), wantErr: ErrInvalidJWKS},
		{name: "null keys", doc: []byte(`{"keys":null}`), wantErr: ErrInvalidJWKS},
		{name: "no keys member", doc: []byte(`{"Keys":[]}`), wantErr: ErrInvalidJWKS},
		{name: "keys not array", doc: []byte(`{"keys":{}}`), wantErr: ErrInvalidJWKS},
		{name: "key not object", doc: []byte(`{"keys":[1]}`), wantErr: ErrInvalidJWKS},
		{name: "garbage", doc: []byte("<html>oops</html>"), wantErr: ErrInvalidJWKS},
		{name: "empty input", doc: nil, wantErr: ErrInvalidJWKS},
		{name: "trailing data", doc: append(setOf(t, ed), "{}"...), wantErr: ErrInvalidJWKS},

		{name: "missing kid", doc: setOf(t, with(ed, "kid", nil)), wantErr: ErrInvalidJWKS},
		{name: "empty kid", doc: setOf(t, with(ed, "kid", "")), wantErr: ErrInvalidJWKS},
		{name: "duplicate kid", doc: setOf(t, ed, with(ec, "kid", "ed")), wantErr: ErrInvalidJWKS},
		{name: "member names are case-sensitive", doc: setOf(t, with(ed, "kty", nil, "KTY", "OKP")), wantErr: ErrInvalidJWKS},
		{name: "kty not a string", doc: setOf(t, with(ed, "kty", 1)), wantErr: ErrInvalidJWKS},
		{name: "alg contradicts type", doc: setOf(t, with(ed, "alg", "ES256")), wantErr: ErrInvalidKey},
		{name: "point off curve", doc: setOf(t, offCurve), wantErr: ErrInvalidKey},
		{name: "short ed25519", doc: setOf(t, with(ed, "x", "AAAA")), wantErr: ErrInvalidKey},
		{name: "short ec coordinate", doc: setOf(t, with(ec, "x", "AAAA")), wantErr: ErrInvalidKey},
		{name: "padded base64", doc: setOf(t, with(rs, "e", "AQAB=")), wantErr: ErrInvalidJWKS},
		{name: "standard base64 alphabet", doc: setOf(t, with(ed, "x", strings.NewReplacer("-", "+", "_", "/").Replace(ed["x"].(string))+"+")), wantErr: ErrInvalidJWKS},
		{name: "rsa exponent too long", doc: setOf(t, with(rs, "e", "AQABAQAB")), wantErr: ErrInvalidKey},
		{name: "rsa modulus leading zero", doc: setOf(t, with(rs, "n", "AA"+rs["n"].(string))), wantErr: ErrInvalidJWKS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseJWKS(tt.doc)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrInvalidJWKS) {
					t.Fatalf("ParseJWKS error = %v, want %v (and ErrInvalidJWKS)", err, tt.wantErr)
				}
				if keys != nil {
					t.Fatalf("ParseJWKS returned keys %v with an error", keys)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJWKS: %v", err)
			}
			var kids []string
			for _, k := range keys {
				if err := k.validate(); err != nil {
					t.Errorf("parsed key %q does not validate: %v", k.ID, err)
				}
				kids = append(kids, k.ID)
			}
			if !slices.Equal(kids, tt.wantKIDs) {
				t.Fatalf("kids = %v, want %v", kids, tt.wantKIDs)
			}
		})
	}
}

func TestMarshalJWKSRoundTrip(t *testing.T) {
	want := []Key{
		{ID: "ed", Algorithm: AlgEdDSA, Public: newEd25519Key(t)},
		{ID: "ec", Algorithm: AlgES256, Public: newECKey(t, elliptic.P256())},
		{ID: "rs", Algorithm: AlgRS256, Public: &newRSAKey(t, 2048, 0).PublicKey},
	}
	got, err := ParseJWKS(jwksOf(t, want...))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d keys, want %d", len(got), len(want))
	}
	type equaler interface{ Equal(x crypto.PublicKey) bool }
	for i := range want {
		if got[i].ID != want[i].ID || got[i].Algorithm != want[i].Algorithm {
			t.Errorf("key %d = %q/%q, want %q/%q", i, got[i].ID, got[i].Algorithm, want[i].ID, want[i].Algorithm)
		}
		if !want[i].Public.(equaler).Equal(got[i].Public) {
			t.Errorf("key %d: public key differs after round trip", i)
		}
	}

	if _, err := MarshalJWKS(Key{ID: "weak", Public: &newRSAKey(t, 1024, 0).PublicKey}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("MarshalJWKS(weak rsa) error = %v, want ErrInvalidKey", err)
	}
}

// FuzzParseJWKS checks that ParseJWKS never panics, that every key it
// returns is valid, and that re-encoding what it returns parses to the same
// kids (the encoder as oracle).
func FuzzParseJWKS(f *testing.F) {
	f.Add(jwksOf(f,
		Key{ID: "ed", Public: newEd25519Key(f)},
		Key{ID: "ec", Public: newECKey(f, elliptic.P256())},
		Key{ID: "rs", Public: &newRSAKey(f, 2048, 0).PublicKey},
	))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"x"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseJWKS(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidJWKS) {
				t.Fatalf("error does not wrap ErrInvalidJWKS: %v", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Fatal("no keys and no error")
		}
		var kids []string
		for _, k := range keys {
			if err := k.validate(); err != nil {
				t.Fatalf("returned invalid key: %v", err)
			}
			kids = append(kids, k.ID)
		}
		again, err := ParseJWKS(jwksOf(t, keys...))
		if err != nil {
			t.Fatalf("re-encoded set does not parse: %v", err)
		}
		for i, k := range again {
			if k.ID != kids[i] {
				t.Fatalf("round trip kid %d = %q, want %q", i, k.ID, kids[i])
			}
		}
	})
}
