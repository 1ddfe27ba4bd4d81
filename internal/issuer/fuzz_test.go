package issuer_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx/httpxtest"
	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
)

// The fuzz targets send arbitrary bodies and content types through the
// issuer's Handler (one real redis-server and one embedded JetStream per
// target, started before f.Fuzz) and check, for every input:
//   - no panic, and never a 5xx (the dependencies are up);
//   - every non-2xx answer is a JSON body with a non-empty "error";
//   - a 2xx answer comes only from an input that is valid when decoded
//     independently here, and carries the documented body.

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

// serve sends one request straight to h and returns the recorded answer.
func serve(tb testing.TB, h http.Handler, path, contentType string, body []byte, header map[string]string) reply {
	tb.Helper()
	req := httptest.NewRequestWithContext(testContext(tb), http.MethodPost, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return reply{status: res.StatusCode, header: res.Header, body: b}
}

// checkTokenResponse fails unless r carries a token response whose access
// token names sub and this issuer.
func checkTokenResponse(tb testing.TB, r reply, sub string) {
	tb.Helper()
	var tr issuer.TokenResponse
	if err := json.Unmarshal(r.body, &tr); err != nil || tr.AccessToken == "" || tr.RefreshToken == "" ||
		tr.SessionID == "" || tr.TokenType != "Bearer" {
		tb.Fatalf("status %d: %q is not a token response (%v)", r.status, r.body, err)
	}
	claims := segment(tb, tr.AccessToken, 1)
	var gotSub, gotIss, gotSID string
	if json.Unmarshal(claims["sub"], &gotSub) != nil || json.Unmarshal(claims["iss"], &gotIss) != nil ||
		json.Unmarshal(claims["sid"], &gotSID) != nil {
		tb.Fatalf("access token claims %v lack sub, iss or sid", claims)
	}
	if gotSub != sub || gotIss != testIssuer || gotSID != tr.SessionID {
		tb.Fatalf("access token sub %q iss %q sid %q, want %q %q %q", gotSub, gotIss, gotSID, sub, testIssuer, tr.SessionID)
	}
}

// jsonSeeds are broken or odd bodies every JSON target starts from.
func jsonSeeds() [][]byte {
	return [][]byte{
		nil,
		[]byte(`{`),
		[]byte(`[]`),
		[]byte(`null`),
		[]byte(`"x"`),
		[]byte(`{}`),
		[]byte(`{} {}`),
		[]byte(`{"a":1}`),
		[]byte("{\"username\":\"\xff\xfe\"}"),
		[]byte(`{"username":` + strings.Repeat("[", 10000) + `}`),
		[]byte(`{"sub":"` + strings.Repeat("x", 20<<10) + `"}`),
		[]byte(`{"username":"\ud800","password":"\u0000"}`),
		[]byte(`{"sub":1e999}`),
	}
}

func FuzzLogin(f *testing.F) {
	valid := []string{
		`{"username":"alice","password":"correct horse"}`,
		`{"username":"bob","password":"correct horse"}`,
	}
	for _, b := range valid {
		f.Add([]byte(b), ctJSON)
	}
	f.Add([]byte(valid[0]), "application/json; charset=utf-8")
	f.Add([]byte(valid[0]), ctForm)
	f.Add([]byte(valid[0]), "")
	f.Add([]byte(valid[0]), "application/json; charset=")
	for _, b := range []string{
		`{"username":"alice","password":"correct horse"`,
		`{"username":"alice","password":"wrong"}`,
		`{"username":"mallory","password":"correct horse"}`,
		`{"username":"alice","password":"correct horse","admin":true}`,
		`{"username":"alice","password":"correct horse"} trailing`,
		`{"username":1,"password":true}`,
		`{"username":"","password":"correct horse"}`,
		`{"username":"alice","username":"bob","password":"correct horse"}`,
		`{"USERNAME":"alice","Password":"correct horse"}`,
		`{"username":"alice","password":"` + strings.Repeat("p", 100) + `"}`,
		"{\"username\":\"alice\",\"password\":\"correct horse\xff\"}",
	} {
		f.Add([]byte(b), ctJSON)
	}
	for _, b := range jsonSeeds() {
		f.Add(b, ctJSON)
	}

	e := newEnv(f, nil)
	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := serve(t, h, "/v1/login", contentType, body, nil)
		httpxtest.CheckAnswer(t, r.status, r.body, body)
		if r.status < 200 || r.status >= 300 {
			return
		}
		var req struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if r.status != http.StatusOK || !httpxtest.StrictJSON(contentType, body, &req) ||
			e.cfg.Users[req.Username] == nil || req.Password != testPassword {
			t.Fatalf("status %d for an invalid login %q (%s)", r.status, body, contentType)
		}
		checkTokenResponse(t, r, req.Username)
	})
}

func FuzzSessions(f *testing.F) {
	for _, b := range []string{
		`{"sub":"user-1"}`,
		`{"sub":"user-1","claims":{"role":"admin","tenant":42,"n":null,"o":{"a":[1,2]}}}`,
		`{"sub":"ü-ñ-日本"}`,
		`{"sub":"user-1","claims":{}}`,
		`{"sub":"user-1","claims":null}`,
		`{"sub":"user-1","claims":{"sub":"root"}}`,
		`{"sub":"user-1","claims":{"iss":"evil","exp":1}}`,
		`{"sub":"user-1","claims":{"":1}}`,
		`{"sub":"user-1","claims":{"big":"` + strings.Repeat("x", 5000) + `"}}`,
		`{"sub":"user-1","claims":[1,2]}`,
		`{"sub":"user-1","claims":{"a":1,"a":2}}`,
		`{"sub":"` + strings.Repeat("s", 257) + `"}`,
		`{"sub":"a\u0000b"}`,
		`{"sub":"a\nb"}`,
		`{"sub":"\ud800"}`,
		`{"sub":""}`,
		`{"sub":null}`,
		`{"sub":["a"]}`,
		`{"sub":"user-1","extra":true}`,
		`{"sub":"user-1"`,
		"{\"sub\":\"user-1\",\"claims\":{\"\xff\":1}}",
	} {
		f.Add([]byte(b), ctJSON)
	}
	f.Add([]byte(`{"sub":"user-1"}`), ctForm)
	f.Add([]byte(`{"sub":"user-1"}`), "")
	for _, b := range jsonSeeds() {
		f.Add(b, ctJSON)
	}

	e := newEnv(f, nil)
	h := e.srv.Handler()
	auth := bearer(testCredential)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := serve(t, h, "/v1/sessions", contentType, body, auth)
		httpxtest.CheckAnswer(t, r.status, r.body, body)
		if r.status < 200 || r.status >= 300 {
			return
		}
		var req struct {
			Sub    string                     `json:"sub"`
			Claims map[string]json.RawMessage `json:"claims"`
		}
		if r.status != http.StatusCreated || !httpxtest.StrictJSON(contentType, body, &req) ||
			req.Sub == "" || len(req.Sub) > 256 || strings.IndexFunc(req.Sub, unicode.IsControl) >= 0 {
			t.Fatalf("status %d for an invalid session request %q (%s)", r.status, body, contentType)
		}
		for k := range req.Claims {
			switch k {
			case "", "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "cnf", "client_id":
				t.Fatalf("status %d for a session request with claim %q: %q", r.status, k, body)
			}
		}
		checkTokenResponse(t, r, req.Sub)
	})
}

func FuzzToken(f *testing.F) {
	e := newEnv(f, nil)
	// Live refresh tokens: the only presentations that may give a 200.
	live := map[string]bool{}
	var seeds []string
	for _, u := range []string{"alice", "bob"} {
		rt := e.login(f, u).RefreshToken
		live[rt] = true
		seeds = append(seeds, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode())
	}
	rt := seeds[0]
	seeds = append(seeds,
		rt+"&scope=x",
		rt+"&grant_type=refresh_token",
		"grant_type=password&username=alice&password=correct+horse",
		"grant_type=refresh_token",
		"grant_type=&refresh_token=x",
		"refresh_token=x",
		"grant_type=refresh_token&refresh_token=AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"grant_type=refresh_token&refresh_token=%zz",
		"grant_type=refresh_token&refresh_token=%ff%fe",
		"grant_type=refresh_token;refresh_token=x",
		"grant_type=refresh_token&refresh_token="+strings.Repeat("x", 20<<10),
		"a.b.c=%00&&&==",
		"",
	)
	for _, s := range seeds {
		f.Add([]byte(s), ctForm)
	}
	f.Add([]byte(seeds[0]), "application/x-www-form-urlencoded; charset=utf-8")
	f.Add([]byte(seeds[0]), ctJSON)
	f.Add([]byte(`{"grant_type":"refresh_token"}`), ctJSON)
	f.Add([]byte(seeds[0]), "")

	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := serve(t, h, "/oauth2/token", contentType, body, nil)
		httpxtest.CheckAnswer(t, r.status, r.body, body)
		if r.status < 200 || r.status >= 300 {
			return
		}
		form, ok := httpxtest.StrictForm(contentType, body)
		if r.status != http.StatusOK || !ok || form.Get("grant_type") != "refresh_token" || !live[form.Get("refresh_token")] {
			t.Fatalf("status %d for an invalid refresh %q (%s): %s", r.status, body, contentType, r.body)
		}
		var tr issuer.TokenResponse
		if err := json.Unmarshal(r.body, &tr); err != nil || tr.AccessToken == "" || tr.RefreshToken == "" {
			t.Fatalf("refresh answer %q is not a token response (%v)", r.body, err)
		}
	})
}

func FuzzRevokeRFC7009(f *testing.F) {
	e := newEnv(f, nil)
	tr := e.login(f, "alice")
	for _, s := range []string{
		url.Values{"token": {tr.AccessToken}, "token_type_hint": {"access_token"}}.Encode(),
		url.Values{"token": {tr.RefreshToken}, "token_type_hint": {"refresh_token"}}.Encode(),
		url.Values{"token": {tr.AccessToken}}.Encode(),
		"token=a.b.c",
		"token=..",
		"token=eyJhbGciOiJub25lIn0.e30.",
		"token=AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"token=x&token_type_hint=bogus",
		"token=x&token=y",
		"token=",
		"token_type_hint=access_token",
		"token=%zz",
		"token=%ff",
		"token=" + strings.Repeat("x", 20<<10),
		"",
	} {
		f.Add([]byte(s), ctForm)
	}
	f.Add([]byte("token=x"), ctJSON)
	f.Add([]byte("token=x"), "")
	f.Add([]byte("token=x"), "multipart/form-data; boundary=x")

	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := serve(t, h, "/oauth2/revoke", contentType, body, nil)
		httpxtest.CheckAnswer(t, r.status, r.body, body)
		if r.status < 200 || r.status >= 300 {
			return
		}
		// RFC 7009 §2.2: 200 for any token, known or not, but only for a
		// well-formed request that names one.
		form, ok := httpxtest.StrictForm(contentType, body)
		if r.status != http.StatusOK || !ok || form.Get("token") == "" {
			t.Fatalf("status %d for an invalid revocation %q (%s): %s", r.status, body, contentType, r.body)
		}
	})
}
