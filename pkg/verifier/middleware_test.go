package verifier

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

func TestMiddleware(t *testing.T) {
	e := newEnv(t)
	v := e.verifier(t, nil)
	me := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := ClaimsFromContext(r.Context())
		if !ok {
			t.Error("handler called without claims in the context")
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"sub": c.Subject})
	})
	plain := v.Middleware(MiddlewareConfig{})(me)
	withCookie := v.Middleware(MiddlewareConfig{Cookie: "access_token", Realm: "api"})(me)

	good := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice"})
	revoked := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", SessionID: "gone"})
	expired := e.iss.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: time.Now().Add(-10 * time.Minute), TTL: time.Minute})
	e.srv.Revoke(t, events.NewSession(eventID("ses"), "gone", time.Now()))
	eventually.True(t, 5*time.Second, "session revocation applied", func() bool { return v.Health().Held > 0 })

	tests := []struct {
		name       string
		handler    http.Handler
		authz      []string
		cookie     string
		wantStatus int
		wantAuthn  string // substring of WWW-Authenticate
		wantError  string // JSON error code
		wantBody   string
	}{
		{name: "good bearer", handler: plain, authz: []string{"Bearer " + good}, wantStatus: 200, wantBody: `"sub":"alice"`},
		{name: "scheme is case-insensitive", handler: plain, authz: []string{"bearer " + good}, wantStatus: 200},
		{name: "no token", handler: plain, wantStatus: 401, wantAuthn: `Bearer realm="jwtrevoke"`, wantError: "unauthorized"},
		{name: "basic auth", handler: plain, authz: []string{"Basic YWxpY2U6ZGVtbw=="}, wantStatus: 400, wantError: "invalid_request"},
		{name: "two authorization headers", handler: plain, authz: []string{"Bearer " + good, "Bearer " + good}, wantStatus: 400, wantError: "invalid_request"},
		{name: "garbage token", handler: plain, authz: []string{"Bearer abc.def.ghi"}, wantStatus: 401, wantAuthn: `error="invalid_token", error_description="malformed"`, wantError: "invalid_token"},
		{name: "revoked session", handler: plain, authz: []string{"Bearer " + revoked}, wantStatus: 401, wantAuthn: `error_description="revoked_session"`, wantError: "invalid_token"},
		{name: "expired", handler: plain, authz: []string{"Bearer " + expired}, wantStatus: 401, wantAuthn: `error_description="expired"`},
		{name: "cookie when configured", handler: withCookie, cookie: good, wantStatus: 200},
		{name: "cookie ignored when not configured", handler: plain, cookie: good, wantStatus: 401},
		{name: "header wins over cookie", handler: withCookie, authz: []string{"Bearer " + revoked}, cookie: good, wantStatus: 401, wantAuthn: `realm="api"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/me", nil)
			for _, a := range tt.authz {
				req.Header.Add("Authorization", a)
			}
			if tt.cookie != "" {
				req.AddCookie(&http.Cookie{Name: "access_token", Value: tt.cookie})
			}
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if got := rec.Header().Get("WWW-Authenticate"); !strings.Contains(got, tt.wantAuthn) {
				t.Fatalf("WWW-Authenticate = %q, want it to contain %q", got, tt.wantAuthn)
			}
			if tt.wantStatus != 200 {
				var body struct{ Error, ErrorDescription string }
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
					t.Fatalf("error body %q is not {error, error_description}: %v", rec.Body, err)
				}
				if tt.wantError != "" && body.Error != tt.wantError {
					t.Fatalf("error = %q, want %q", body.Error, tt.wantError)
				}
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Fatalf("body %q does not contain %q", rec.Body, tt.wantBody)
			}
		})
	}
}
