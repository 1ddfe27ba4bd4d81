package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	type body struct {
		A string `json:"a"`
	}
	tests := []struct {
		name        string
		contentType string
		body        string
		want        int // 0: accepted
	}{
		{"ok", "application/json", `{"a":"x"}`, 0},
		{"ok with charset", "application/json; charset=utf-8", `{"a":"x"}`, 0},
		{"no content type", "", `{"a":"x"}`, 415},
		{"form", "application/x-www-form-urlencoded", `a=x`, 415},
		{"too large", "application/json", `{"a":"` + strings.Repeat("x", DefaultMaxBody) + `"}`, 413},
		{"malformed", "application/json", `{"a":`, 400},
		{"unknown field", "application/json", `{"a":"x","b":1}`, 400},
		{"trailing data", "application/json", `{"a":"x"} {}`, 400},
		{"wrong type", "application/json", `{"a":1}`, 400},
		{"invalid utf-8", "application/json", "{\"a\":\"\xff\"}", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			var b body
			err := DecodeJSON(httptest.NewRecorder(), r, 0, &b)
			var he *Error
			switch {
			case tt.want == 0 && err != nil:
				t.Fatalf("DecodeJSON: %v", err)
			case tt.want != 0 && (!errors.As(err, &he) || he.Status != tt.want):
				t.Fatalf("DecodeJSON error = %v, want status %d", err, tt.want)
			}
		})
	}
}

// TestDecodeJSONSaysWhatIsWrong: a refused body is described in the
// client's terms (fields, JSON types, offsets), never with Go's type names.
func TestDecodeJSONSaysWhatIsWrong(t *testing.T) {
	type login struct {
		Username string            `json:"username"`
		Age      *uint8            `json:"age"`
		Admin    bool              `json:"admin"`
		Tags     []string          `json:"tags"`
		Claims   map[string]string `json:"claims"`
	}
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "array", body: `[{"username":"alice"}]`, want: "body must be a JSON object"},
		{name: "string", body: `"alice"`, want: "body must be a JSON object"},
		{name: "null", body: `null`, want: "body must be a JSON object"},
		{name: "number field", body: `{"username":1}`, want: `field "username" must be a string`},
		{name: "bool field", body: `{"admin":"yes"}`, want: `field "admin" must be true or false`},
		{name: "out of range", body: `{"age":300}`, want: `field "age" must be a whole number in range`},
		{name: "array field", body: `{"tags":"a"}`, want: `field "tags" must be an array`},
		{name: "array element", body: `{"tags":[1]}`, want: `field "tags" must be a string`},
		{name: "object field", body: `{"claims":[]}`, want: `field "claims" must be an object`},
		{name: "unknown field", body: `{"username":"alice","x":1}`, want: `unknown field "x"`},
		{name: "syntax", body: `{"username":}`, want: "body is not valid JSON at offset 13"},
		{name: "truncated", body: `{"username":"alice"`, want: "body is not valid JSON: it ends before the object is complete"},
		{name: "empty", body: ``, want: "body is empty: want a JSON object"},
		{name: "trailing", body: `{} {}`, want: "data after the JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			var v login
			err := DecodeJSON(httptest.NewRecorder(), r, 0, &v)
			var he *Error
			if !errors.As(err, &he) || he.Status != 400 || he.Description != tt.want {
				t.Fatalf("DecodeJSON(%s) = %v, want 400 %q", tt.body, err, tt.want)
			}
		})
	}
}

func TestParseForm(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		want                    int
	}{
		{"ok", "application/x-www-form-urlencoded", "a=1&b=2", 0},
		{"json", "application/json", `{}`, 415},
		{"repeated parameter", "application/x-www-form-urlencoded", "a=1&a=2", 400},
		{"bad escape", "application/x-www-form-urlencoded", "a=%zz", 400},
		{"invalid utf-8", "application/x-www-form-urlencoded", "a=%ff", 400},
		{"too large", "application/x-www-form-urlencoded", "a=" + strings.Repeat("x", DefaultMaxBody), 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.contentType)
			_, err := ParseForm(httptest.NewRecorder(), r, 0)
			var he *Error
			if tt.want == 0 && err != nil || tt.want != 0 && (!errors.As(err, &he) || he.Status != tt.want) {
				t.Fatalf("ParseForm error = %v, want status %d", err, tt.want)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	if _, err := NewCredentials(); err == nil {
		t.Fatal("no credentials accepted")
	}
	if _, err := NewCredentials("short"); err == nil {
		t.Fatal("a short credential accepted")
	}
	if _, err := NewCredentials("credential with spaces"); err == nil {
		t.Fatal("a credential no bearer token can carry accepted")
	}
	c, err := NewCredentials("old-credential-0001", "new-credential-0002")
	if err != nil {
		t.Fatal(err)
	}
	ok := c.Require(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	for _, tt := range []struct {
		authz string
		want  int
	}{
		{"Bearer old-credential-0001", 204},
		{"Bearer new-credential-0002", 204},
		{"bearer new-credential-0002", 204},
		{"Bearer new-credential-000", 401},
		{"Basic new-credential-0002", 401},
		{"", 401},
	} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/", nil)
		if tt.authz != "" {
			r.Header.Set("Authorization", tt.authz)
		}
		ok.ServeHTTP(rec, r)
		if rec.Code != tt.want {
			t.Errorf("Authorization %q: %d, want %d", tt.authz, rec.Code, tt.want)
		}
		if rec.Code == 401 && (!strings.Contains(rec.Body.String(), `"error":"invalid_client"`) || rec.Header().Get("WWW-Authenticate") == "") {
			t.Errorf("401 without the JSON error or WWW-Authenticate: %q", rec.Body)
		}
	}
}

func TestFailHidesInternalErrors(t *testing.T) {
	rec := httptest.NewRecorder()
	Fail(rec, nil, errors.New("redis: password=hunter2 refused"))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "hunter2") {
		t.Fatalf("Fail leaked an internal error: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	Fail(rec, nil, Errorf(503, "temporarily_unavailable", "nats down"))
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %d %v", rec.Code, rec.Header())
	}
}

// TestHealthShowsOnlyTheReason: /readyz shows a NotReady's reason and
// nothing of any other error; the detail is logged once per change.
func TestHealthShowsOnlyTheReason(t *testing.T) {
	var logs strings.Builder
	var readyErr error
	mux := NewMux()
	Health(mux, func(context.Context) error { return readyErr }, slog.New(slog.NewTextHandler(&logs, nil)))
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantReason string
		wantLogs   int // "not ready" lines logged so far
	}{
		{name: "redis down", err: fmt.Errorf("issuer: %w", NotReadyBecause("redis unreachable", errors.New("dial tcp 10.0.0.7:6379: connection refused"))),
			wantStatus: 503, wantReason: "redis unreachable", wantLogs: 1},
		{name: "still down", err: NotReadyBecause("redis unreachable", errors.New("dial tcp 10.0.0.7:6379: i/o timeout")),
			wantStatus: 503, wantReason: "redis unreachable", wantLogs: 1},
		{name: "untyped error", err: errors.New("secret detail at 10.0.0.7"), wantStatus: 503, wantReason: "not ready", wantLogs: 2},
		{name: "ready", wantStatus: 200, wantLogs: 2},
	}
	for _, tt := range tests {
		readyErr = tt.err
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		var body map[string]string
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != tt.wantStatus || body["reason"] != tt.wantReason {
			t.Fatalf("%s: %d %s, want %d reason %q", tt.name, rec.Code, rec.Body, tt.wantStatus, tt.wantReason)
		}
		if strings.Contains(rec.Body.String(), "10.0.0.7") {
			t.Fatalf("%s: /readyz shows internals: %s", tt.name, rec.Body)
		}
		if n := strings.Count(logs.String(), `msg="not ready"`); n != tt.wantLogs {
			t.Fatalf("%s: %d \"not ready\" log lines, want %d:\n%s", tt.name, n, tt.wantLogs, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("the detail is not logged:\n%s", logs.String())
	}
}

// TestCredentialsBasic: with AllowBasic, HTTP Basic client authentication
// (the key as password, any non-empty client id, form-encoded or not) is
// accepted as well as Bearer; without it, Basic is refused.
func TestCredentialsBasic(t *testing.T) {
	bearerOnly, err := NewCredentials("key+with/chars=0001")
	if err != nil {
		t.Fatal(err)
	}
	withBasic := bearerOnly.AllowBasic()
	basic := func(user, password string) string {
		r := httptest.NewRequest("POST", "/", nil)
		r.SetBasicAuth(user, password)
		return r.Header.Get("Authorization")
	}
	tests := []struct {
		name      string
		creds     *Credentials
		authz     string
		wantValid bool
	}{
		{name: "bearer", creds: withBasic, authz: "Bearer key+with/chars=0001", wantValid: true},
		{name: "basic", creds: withBasic, authz: basic("my-service", "key+with/chars=0001"), wantValid: true},
		{name: "basic form-encoded", creds: withBasic, authz: basic("my-service", "key%2Bwith%2Fchars%3D0001"), wantValid: true},
		{name: "basic wrong password", creds: withBasic, authz: basic("my-service", "key+with/chars=0002")},
		{name: "basic empty client id", creds: withBasic, authz: basic("", "key+with/chars=0001")},
		{name: "basic empty password", creds: withBasic, authz: basic("my-service", "")},
		{name: "basic garbage", creds: withBasic, authz: "Basic !!!"},
		{name: "basic not allowed", creds: bearerOnly, authz: basic("my-service", "key+with/chars=0001")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			r.Header.Set("Authorization", tt.authz)
			if got := tt.creds.Valid(r); got != tt.wantValid {
				t.Fatalf("Valid(%q) = %t, want %t", tt.authz, got, tt.wantValid)
			}
		})
	}
	// One credential per request: a second Authorization header, Bearer or
	// Basic, makes it ambiguous (BearerToken's ErrRepeatedAuthorization).
	two := httptest.NewRequest("POST", "/", nil)
	two.Header.Add("Authorization", basic("my-service", "key+with/chars=0001"))
	two.Header.Add("Authorization", "Bearer key+with/chars=0001")
	if withBasic.Valid(two) || Caller(two) != "" {
		t.Fatal("a request with two Authorization headers authenticated")
	}
	rec := httptest.NewRecorder()
	withBasic.Require(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest("POST", "/", nil))
	if got := rec.Header().Values("WWW-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[1], "Basic ") {
		t.Fatalf("401 WWW-Authenticate %q: want Bearer and Basic", got)
	}
}
