package keyset

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
)

// privateMembers are JWK members that carry secret material (RFC 7517,
// RFC 7518 sections 6.2.2, 6.3.2 and 6.4). A public key set holding any of
// them has leaked a secret; it is rejected as a whole so the mistake is loud.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// b64 is the strict base64url alphabet without padding required by RFC 7515.
var b64 = base64.RawURLEncoding.Strict()

// ParseJWKS parses a JSON Web Key Set (RFC 7517) strictly and returns its
// usable signature verification keys.
//
// Supported keys: kty "OKP" with crv "Ed25519", kty "EC" with crv "P-256",
// kty "RSA" of [MinRSABits] to [MaxRSABits] bits. These are skipped, not
// errors: keys whose "use" is present and not "sig", whose "key_ops" lacks
// "verify", whose "alg" is present and not one of "EdDSA", "ES256", "RS256",
// with another kty or crv, and RSA keys outside the size bounds.
//
// These reject the whole set (errors wrap [ErrInvalidJWKS]): input that is
// not a JSON object with a "keys" array; any key carrying private material
// ("d", "p", "q", "dp", "dq", "qi", "oth", "k"); a supported key that is
// malformed, has no kid, or whose alg contradicts its type; two keys with the
// same kid; and a set that yields no usable key.
//
// Member names are matched exactly (case-sensitive), unlike encoding/json's
// struct decoding.
func ParseJWKS(b []byte) ([]Key, error) {
	keys, _, err := parseJWKS(b)
	return keys, err
}

// parseJWKS is [ParseJWKS] that also says why keys were skipped, for logs.
func parseJWKS(b []byte) (keys []Key, skipped []string, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidJWKS, err)
	}
	rawKeys, ok := top["keys"]
	if !ok {
		return nil, nil, fmt.Errorf("%w: no \"keys\" member", ErrInvalidJWKS)
	}
	var rawSet []map[string]json.RawMessage
	if err := json.Unmarshal(rawKeys, &rawSet); err != nil || rawSet == nil {
		return nil, nil, fmt.Errorf("%w: \"keys\" is not an array of objects", ErrInvalidJWKS)
	}

	seen := make(map[string]bool, len(rawSet))
	for i, m := range rawSet {
		k, why, err := parseJWK(m)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: key %d: %w", ErrInvalidJWKS, i, err)
		}
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("key %d: %s", i, why))
			continue
		}
		if seen[k.ID] {
			return nil, nil, fmt.Errorf("%w: duplicate kid %s", ErrInvalidJWKS, quoteKID(k.ID))
		}
		seen[k.ID] = true
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("%w: no usable signing key (%d skipped)", ErrInvalidJWKS, len(skipped))
	}
	return keys, skipped, nil
}

// parseJWK parses one key. It returns a non-empty reason when the key is
// skipped, or an error when the key makes the whole set invalid.
func parseJWK(m map[string]json.RawMessage) (k Key, skip string, err error) {
	for _, name := range privateMembers {
		if _, ok := m[name]; ok {
			return Key{}, "", fmt.Errorf("private key member %q present", name)
		}
	}
	kty, err := member(m, "kty", true)
	if err != nil {
		return Key{}, "", err
	}
	use, err := member(m, "use", false)
	if err != nil {
		return Key{}, "", err
	}
	if use != "" && use != "sig" {
		return Key{}, fmt.Sprintf("use %q", truncate(use)), nil
	}
	if raw, ok := m["key_ops"]; ok {
		var ops []string
		if err := json.Unmarshal(raw, &ops); err != nil {
			return Key{}, "", fmt.Errorf("key_ops is not an array of strings")
		}
		if !slices.Contains(ops, "verify") {
			return Key{}, "key_ops without \"verify\"", nil
		}
	}
	alg, err := member(m, "alg", false)
	if err != nil {
		return Key{}, "", err
	}
	switch alg {
	case "", AlgEdDSA, AlgES256, AlgRS256:
	default:
		return Key{}, fmt.Sprintf("unsupported alg %q", truncate(alg)), nil
	}
	crv, err := member(m, "crv", false)
	if err != nil {
		return Key{}, "", err
	}

	switch {
	case kty == "OKP" && crv == "Ed25519":
		k.Public, err = parseOKP(m)
	case kty == "EC" && crv == "P-256":
		k.Public, err = parseEC(m)
	case kty == "RSA":
		var pub *rsa.PublicKey
		pub, skip, err = parseRSA(m)
		if skip != "" || err != nil {
			return Key{}, skip, err
		}
		k.Public = pub
	case kty == "OKP" || kty == "EC":
		return Key{}, fmt.Sprintf("unsupported crv %q", truncate(crv)), nil
	default:
		return Key{}, fmt.Sprintf("unsupported kty %q", truncate(kty)), nil
	}
	if err != nil {
		return Key{}, "", err
	}

	if k.ID, err = member(m, "kid", true); err != nil {
		return Key{}, "", err
	}
	k.Algorithm = alg
	if err := k.validate(); err != nil {
		return Key{}, "", err
	}
	return k, "", nil
}

func parseOKP(m map[string]json.RawMessage) (ed25519.PublicKey, error) {
	x, err := b64member(m, "x")
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: ed25519 x of %d bytes", ErrInvalidKey, len(x))
	}
	return ed25519.PublicKey(x), nil
}

func parseEC(m map[string]json.RawMessage) (*ecdsa.PublicKey, error) {
	x, err := b64member(m, "x")
	if err != nil {
		return nil, err
	}
	y, err := b64member(m, "y")
	if err != nil {
		return nil, err
	}
	// RFC 7518 section 6.2.1.2: coordinates are full length (32 bytes on P-256).
	if len(x) != 32 || len(y) != 32 {
		return nil, fmt.Errorf("%w: P-256 coordinates of %d and %d bytes", ErrInvalidKey, len(x), len(y))
	}
	point := append(append([]byte{4}, x...), y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, fmt.Errorf("%w: P-256 point: %w", ErrInvalidKey, err)
	}
	return pub, nil
}

// parseRSA parses an RSA public key. Keys outside the size bounds are
// skipped, so one legacy weak key does not take the whole set down; it can
// never verify anything.
func parseRSA(m map[string]json.RawMessage) (*rsa.PublicKey, string, error) {
	n, err := b64member(m, "n")
	if err != nil {
		return nil, "", err
	}
	e, err := b64member(m, "e")
	if err != nil {
		return nil, "", err
	}
	if len(n) == 0 || n[0] == 0 {
		return nil, "", fmt.Errorf("%w: rsa modulus empty or with leading zero", ErrInvalidKey)
	}
	if len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, "", fmt.Errorf("%w: rsa exponent of %d bytes", ErrInvalidKey, len(e))
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n)}
	for _, b := range e {
		pub.E = pub.E<<8 | int(b)
	}
	if bits := pub.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
		return nil, fmt.Sprintf("rsa modulus of %d bits", bits), nil
	}
	return pub, "", nil
}

// member returns the string member name of m; "" when absent and not required.
func member(m map[string]json.RawMessage, name string, required bool) (string, error) {
	raw, ok := m[name]
	if !ok {
		if required {
			return "", fmt.Errorf("missing %q", name)
		}
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%q is not a string", name)
	}
	if required && s == "" {
		return "", fmt.Errorf("empty %q", name)
	}
	return s, nil
}

// b64member returns the base64url-decoded value of a required member.
func b64member(m map[string]json.RawMessage, name string) ([]byte, error) {
	s, err := member(m, name, true)
	if err != nil {
		return nil, err
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not unpadded base64url: %w", name, err)
	}
	return b, nil
}

// MarshalJWKS encodes keys as a JSON Web Key Set that [ParseJWKS] accepts,
// every key with "use":"sig" and its algorithm. Keys are validated as in
// [NewStatic]; errors wrap [ErrInvalidKey].
func MarshalJWKS(keys ...Key) ([]byte, error) {
	type jwk struct {
		Kty string `json:"kty"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Crv string `json:"crv,omitempty"`
		X   string `json:"x,omitempty"`
		Y   string `json:"y,omitempty"`
		N   string `json:"n,omitempty"`
		E   string `json:"e,omitempty"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for i, k := range keys {
		if err := k.validate(); err != nil {
			return nil, fmt.Errorf("keyset: key %d: %w", i, err)
		}
		j := jwk{Use: "sig", Kid: k.ID}
		switch p := k.Public.(type) {
		case ed25519.PublicKey:
			j.Kty, j.Alg, j.Crv = "OKP", AlgEdDSA, "Ed25519"
			j.X = b64.EncodeToString(p)
		case *ecdsa.PublicKey:
			b, err := p.Bytes() // 0x04 || X || Y, validated above
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
			}
			j.Kty, j.Alg, j.Crv = "EC", AlgES256, "P-256"
			j.X, j.Y = b64.EncodeToString(b[1:33]), b64.EncodeToString(b[33:])
		case *rsa.PublicKey:
			j.Kty, j.Alg = "RSA", AlgRS256
			j.N = b64.EncodeToString(p.N.Bytes())
			j.E = b64.EncodeToString(big.NewInt(int64(p.E)).Bytes())
		}
		set.Keys = append(set.Keys, j)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(set); err != nil {
		return nil, fmt.Errorf("keyset: encode jwks: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
