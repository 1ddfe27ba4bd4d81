package issuer_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
)

// writeKey writes k as PEM PKCS#8 into dir/name.
func writeKey(tb testing.TB, dir, name string, k issuer.SigningKey) {
	tb.Helper()
	pem, err := issuer.MarshalPrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), pem, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestLoadKeys: keys load from a directory laid out like a mounted
// Kubernetes Secret (hidden ..data entries skipped), sorted by kid, the
// kid being the file name without extension; a bad file is refused.
func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	var want []string
	for _, tt := range []struct{ file, alg string }{
		{file: "2026-03.pem", alg: "ES256"},
		{file: "2026-01.pem", alg: "EdDSA"},
		{file: "2026-02.key", alg: "RS256"},
	} {
		writeKey(t, dir, tt.file, testKey(t, tt.alg))
	}
	want = []string{"2026-01", "2026-02", "2026-03"}
	if err := os.Mkdir(filepath.Join(dir, "..2026_data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".hidden"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := issuer.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("kids %v, want %v", got, want)
	}

	tests := []struct {
		name    string
		content string
		wantErr error
	}{
		{name: "not pem", content: "hello", wantErr: issuer.ErrInvalidKey},
		{name: "public key", content: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", wantErr: issuer.ErrInvalidKey},
		{name: "garbage der", content: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", wantErr: issuer.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := t.TempDir()
			if err := os.WriteFile(filepath.Join(bad, "k.pem"), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := issuer.LoadKeys(bad)
			isErr(t, err, tt.wantErr)
		})
	}
	_, err = issuer.LoadKeys(t.TempDir())
	isErr(t, err, issuer.ErrInvalidKey)
	_, err = issuer.GenerateKey("HS256")
	isErr(t, err, issuer.ErrInvalidKey)
}
