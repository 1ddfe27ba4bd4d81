package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
)

// BenchmarkRefresh measures refresh-token rotations per second through the
// HTTP handler (form parsing, Rotate's Lua CAS and the epoch read against a
// real redis-server, minting with EdDSA), one chain, sequentially.
func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, nil)
	h := e.srv.Handler()
	rt := e.login(b, "alice").RefreshToken
	ctx := testContext(b)
	b.ReportAllocs()
	for b.Loop() {
		body := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "/oauth2/token", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("refresh: %d %s", rec.Code, rec.Body)
		}
		var tr issuer.TokenResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
			b.Fatal(err)
		}
		rt = tr.RefreshToken
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rotations/s")
}
