package issuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/golang-jwt/jwt/v5"

	"github.com/jwtrevoke/jwtrevoke/internal/keyset"
)

// ErrInvalidKey is wrapped by errors about signing keys ([LoadKeys],
// [GenerateKey], [New]).
var ErrInvalidKey = errors.New("issuer: invalid signing key")

// SigningKey is a private signing key and its kid.
type SigningKey struct {
	// ID is the kid published in the JWKS and put in token headers.
	ID string
	// Private is an ed25519.PrivateKey (EdDSA), an *ecdsa.PrivateKey on
	// P-256 (ES256) or an *rsa.PrivateKey of at least 2048 bits (RS256).
	// Opaque signers (HSM, KMS) are not supported for ES256 and RS256.
	Private crypto.Signer
}

// signer is a validated SigningKey with what signing needs.
type signer struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	priv   crypto.Signer
	public keyset.Key
	sigLen int // bytes of a signature
}

// newSigner validates k.
func newSigner(k SigningKey) (signer, error) {
	if k.Private == nil {
		return signer{}, fmt.Errorf("%w: kid %q: no private key", ErrInvalidKey, k.ID)
	}
	s := signer{kid: k.ID, priv: k.Private}
	switch p := k.Private.(type) {
	case ed25519.PrivateKey:
		s.alg, s.method, s.sigLen = keyset.AlgEdDSA, jwt.SigningMethodEdDSA, ed25519.SignatureSize
	case *ecdsa.PrivateKey:
		s.alg, s.method, s.sigLen = keyset.AlgES256, jwt.SigningMethodES256, 64
	case *rsa.PrivateKey:
		s.alg, s.method, s.sigLen = keyset.AlgRS256, jwt.SigningMethodRS256, p.Size()
	default:
		return signer{}, fmt.Errorf("%w: kid %q: unsupported key type %T", ErrInvalidKey, k.ID, p)
	}
	s.public = keyset.Key{ID: k.ID, Algorithm: s.alg, Public: k.Private.Public()}
	// keyset validates kid, curve and RSA size the way verifiers will.
	if _, err := keyset.NewStatic(s.public); err != nil {
		return signer{}, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return s, nil
}

// GenerateKey returns a fresh signing key for alg ("EdDSA", "ES256" or
// "RS256", 2048 bits) with a random kid, for dev mode and tests.
func GenerateKey(alg string) (SigningKey, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case keyset.AlgEdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case keyset.AlgES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case keyset.AlgRS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return SigningKey{}, fmt.Errorf("%w: unsupported algorithm %q (want EdDSA, ES256 or RS256)", ErrInvalidKey, alg)
	}
	if err != nil {
		return SigningKey{}, fmt.Errorf("issuer: generate %s key: %w", alg, err)
	}
	return SigningKey{ID: strings.ToLower(alg) + "-" + rand.Text()[:16], Private: priv}, nil
}

// LoadKeys reads every PEM "PRIVATE KEY" (PKCS#8) file of dir, as a
// Kubernetes Secret mounts them: the kid is the file name without its
// extension; names starting with "." (the Secret's ..data links) and
// directories are skipped; keys come back sorted by kid. Errors wrap
// [ErrInvalidKey] for a file that is not a supported key.
func LoadKeys(dir string) ([]SigningKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("issuer: load keys: %w", err)
	}
	var keys []SigningKey
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		fi, err := os.Stat(path) // follows the Secret's symlinks
		if err != nil {
			return nil, fmt.Errorf("issuer: load keys: %w", err)
		}
		if fi.IsDir() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("issuer: load keys: %w", err)
		}
		kid := strings.TrimSuffix(name, filepath.Ext(name))
		priv, err := parsePrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("%w: file %s: %w", ErrInvalidKey, name, err)
		}
		k := SigningKey{ID: kid, Private: priv}
		if _, err := newSigner(k); err != nil {
			return nil, fmt.Errorf("issuer: file %s: %w", name, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key files in %s", ErrInvalidKey, dir)
	}
	slices.SortFunc(keys, func(a, b SigningKey) int { return strings.Compare(a.ID, b.ID) })
	return keys, nil
}

// parsePrivateKey decodes one PEM PKCS#8 private key.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	block, rest := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\" (PKCS#8) block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key type %T cannot sign", key)
	}
	return s, nil
}

// MarshalPrivateKey encodes k's private key as PEM PKCS#8, the format
// [LoadKeys] reads (for key generation tooling and tests).
func MarshalPrivateKey(k SigningKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKey, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
