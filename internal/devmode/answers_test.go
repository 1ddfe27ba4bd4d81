package devmode_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
)

// TestEveryErrorIsJSON: every service answers a wrong method on each known
// path, an unknown path and an oversized header with a JSON
// {"error","error_description"} body and the right status, never
// net/http's plain text.
func TestEveryErrorIsJSON(t *testing.T) {
	sys := startSystem(t, redistest.Run(t).Addr(), 1)
	big := strings.Repeat("x", 100<<10)
	tests := []struct {
		name       string
		method     string
		url        string
		header     map[string]string
		wantStatus int
		wantAllow  string
	}{
		{name: "issuer jwks POST", method: "POST", url: sys.IssuerURL + "/.well-known/jwks.json", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "issuer login GET", method: "GET", url: sys.IssuerURL + "/v1/login", wantStatus: 405, wantAllow: "POST"},
		{name: "issuer sessions GET", method: "GET", url: sys.IssuerURL + "/v1/sessions", wantStatus: 405, wantAllow: "POST"},
		{name: "issuer token GET", method: "GET", url: sys.IssuerURL + "/oauth2/token", wantStatus: 405, wantAllow: "POST"},
		{name: "issuer revoke PUT", method: "PUT", url: sys.IssuerURL + "/oauth2/revoke", wantStatus: 405, wantAllow: "POST"},
		{name: "issuer logout GET", method: "GET", url: sys.IssuerURL + "/v1/logout", wantStatus: 405, wantAllow: "POST"},
		{name: "issuer logout all DELETE", method: "DELETE", url: sys.IssuerURL + "/v1/logout/all", wantStatus: 405, wantAllow: "POST"},
		{name: "issuer healthz POST", method: "POST", url: sys.IssuerURL + "/healthz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "issuer readyz POST", method: "POST", url: sys.IssuerURL + "/readyz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "issuer metrics POST", method: "POST", url: sys.IssuerURL + "/metrics", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "issuer unknown", method: "GET", url: sys.IssuerURL + "/nope", wantStatus: 404},
		{name: "issuer big header", method: "GET", url: sys.IssuerURL + "/healthz", header: map[string]string{"X-Big": big}, wantStatus: 431},
		{name: "revoker revocations GET", method: "GET", url: sys.RevokerURL + "/v1/revocations", wantStatus: 405, wantAllow: "POST"},
		{name: "revoker introspect GET", method: "GET", url: sys.RevokerURL + "/oauth2/introspect", wantStatus: 405, wantAllow: "POST"},
		{name: "revoker healthz POST", method: "POST", url: sys.RevokerURL + "/healthz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "revoker readyz POST", method: "POST", url: sys.RevokerURL + "/readyz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "revoker metrics POST", method: "POST", url: sys.RevokerURL + "/metrics", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "revoker unknown", method: "POST", url: sys.RevokerURL + "/v1/nope", wantStatus: 404},
		{name: "revoker big header", method: "POST", url: sys.RevokerURL + "/v1/revocations", header: map[string]string{"X-Big": big}, wantStatus: 431},
		{name: "example me POST", method: "POST", url: sys.ExampleURLs[0] + "/v1/me", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "example healthz POST", method: "POST", url: sys.ExampleURLs[0] + "/healthz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "example readyz POST", method: "POST", url: sys.ExampleURLs[0] + "/readyz", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "example metrics POST", method: "POST", url: sys.ExampleURLs[0] + "/metrics", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "example unknown", method: "GET", url: sys.ExampleURLs[0] + "/v2/me", wantStatus: 404},
		{name: "example big header", method: "GET", url: sys.ExampleURLs[0] + "/v1/me", header: map[string]string{"Authorization": "Bearer " + big}, wantStatus: 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tt.method, tt.url, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, body)
			}
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Description == "" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("body %q (%s) is not a JSON error", body, resp.Header.Get("Content-Type"))
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Fatalf("Allow %q, want %q", got, tt.wantAllow)
			}
		})
	}
}
