package keyset

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestNewStatic(t *testing.T) {
	ed := newEd25519Key(t)
	ec := newECKey(t, elliptic.P256())
	rs := &newRSAKey(t, 2048, 0).PublicKey
	weak := &newRSAKey(t, 1024, 0).PublicKey
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := *ec
	//lint:ignore SA1019 an off-curve point can only be built from the raw coordinates
	offCurve.Y = new(big.Int).Add(ec.Y, big.NewInt(1))

	tests := []struct {
		name    string
		keys    []Key
		wantErr error
	}{
		{name: "one of each type", keys: []Key{
			{ID: "ed", Public: ed}, {ID: "ec", Algorithm: AlgES256, Public: ec}, {ID: "rs", Algorithm: AlgRS256, Public: rs},
		}},
		{name: "no keys", wantErr: ErrInvalidKey},
		{name: "empty kid", keys: []Key{{Public: ed}}, wantErr: ErrInvalidKey},
		{name: "duplicate kid", keys: []Key{{ID: "a", Public: ed}, {ID: "a", Public: ec}}, wantErr: ErrInvalidKey},
		{name: "rsa 1024", keys: []Key{{ID: "a", Public: weak}}, wantErr: ErrInvalidKey},
		{name: "rsa even exponent", keys: []Key{{ID: "a", Public: &rsa.PublicKey{N: rs.N, E: 65536}}}, wantErr: ErrInvalidKey},
		{name: "alg does not match type", keys: []Key{{ID: "a", Algorithm: AlgRS256, Public: ed}}, wantErr: ErrInvalidKey},
		{name: "unknown alg", keys: []Key{{ID: "a", Algorithm: "HS256", Public: ed}}, wantErr: ErrInvalidKey},
		{name: "p-384", keys: []Key{{ID: "a", Public: newECKey(t, elliptic.P384())}}, wantErr: ErrInvalidKey},
		{name: "point off curve", keys: []Key{{ID: "a", Public: &offCurve}}, wantErr: ErrInvalidKey},
		{name: "ed25519 short", keys: []Key{{ID: "a", Public: ed[:31]}}, wantErr: ErrInvalidKey},
		{name: "x25519", keys: []Key{{ID: "a", Public: x25519.PublicKey()}}, wantErr: ErrInvalidKey},
		{name: "hmac secret", keys: []Key{{ID: "a", Public: []byte("secret")}}, wantErr: ErrInvalidKey},
		{name: "nil key", keys: []Key{{ID: "a"}}, wantErr: ErrInvalidKey},
		{name: "private key", keys: []Key{{ID: "a", Public: crypto.PrivateKey(newRSAKey(t, 2048, 0))}}, wantErr: ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewStatic(tt.keys...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewStatic error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			for _, want := range tt.keys {
				got, err := s.Key(context.Background(), want.ID)
				if err != nil || got.ID != want.ID || got.Algorithm != want.Algorithm {
					t.Fatalf("Key(%q) = %+v, %v", want.ID, got, err)
				}
			}
		})
	}
}

func TestStaticUnknownKey(t *testing.T) {
	s, err := NewStatic(Key{ID: "a", Public: newEd25519Key(t)})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 10_000)
	_, err = s.Key(context.Background(), long)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	if n := len(err.Error()); n > 120 {
		t.Fatalf("error of %d bytes quotes too much of an untrusted kid: %q", n, err)
	}
}

func TestKeyAllowsAlgorithm(t *testing.T) {
	ed := newEd25519Key(t)
	tests := []struct {
		name string
		key  Key
		alg  string
		want bool
	}{
		{name: "any alg matches type", key: Key{ID: "a", Public: ed}, alg: AlgEdDSA, want: true},
		{name: "pinned alg", key: Key{ID: "a", Algorithm: AlgEdDSA, Public: ed}, alg: AlgEdDSA, want: true},
		{name: "other alg for type", key: Key{ID: "a", Public: ed}, alg: AlgRS256},
		{name: "none", key: Key{ID: "a", Public: ed}, alg: "none"},
		{name: "hmac confusion", key: Key{ID: "a", Public: &newRSAKey(t, 2048, 0).PublicKey}, alg: "HS256"},
		{name: "inconsistent pinned alg", key: Key{ID: "a", Algorithm: AlgES256, Public: ed}, alg: AlgEdDSA},
		{name: "invalid key", key: Key{ID: "a", Public: ed25519.PublicKey{1}}, alg: AlgEdDSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.key.AllowsAlgorithm(tt.alg); got != tt.want {
				t.Fatalf("AllowsAlgorithm(%q) = %v, want %v", tt.alg, got, tt.want)
			}
		})
	}
}
