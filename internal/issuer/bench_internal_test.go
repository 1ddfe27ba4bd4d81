package issuer

import (
	"testing"
	"time"
)

// BenchmarkMint measures access tokens minted per second (claims encoding
// and signature), per algorithm, with a fixed clock.
func BenchmarkMint(b *testing.B) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			k, err := GenerateKey(alg)
			if err != nil {
				b.Fatal(err)
			}
			sg, err := newSigner(k)
			if err != nil {
				b.Fatal(err)
			}
			s := &Server{cfg: Config{Issuer: "https://issuer.test", Audiences: []string{"api"}}, keys: newSigningKeys([]signer{sg})}
			iat := time.Unix(1_763_812_854, 123_456_000)
			tok := accessToken{sub: "alice", sid: randomID(), extra: map[string]any{"role": "admin"}, iat: iat, expiry: iat.Add(5 * time.Minute)}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.mint(tok); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
