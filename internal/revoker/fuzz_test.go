package revoker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx/httpxtest"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// The fuzz targets send arbitrary bodies, content types (and, for
// revocations, Idempotency-Keys) through the revoker's Handler (one real
// redis-server, embedded JetStream and test issuer per target, started
// before f.Fuzz) and check, for every input:
//   - no panic, and never a 5xx (the dependencies are up);
//   - every non-2xx answer is a JSON body with a non-empty "error";
//   - a 2xx answer comes only from an input that is valid when decoded
//     independently here, and carries the documented body.

const (
	fuzzJSON = "application/json"
	fuzzForm = "application/x-www-form-urlencoded"
)

// fuzzServe sends one request straight to h and returns the answer.
func fuzzServe(tb testing.TB, h http.Handler, path, contentType string, body []byte, header map[string]string) answer {
	tb.Helper()
	req := httptest.NewRequestWithContext(testCtx(tb), http.MethodPost, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// fuzzRequest decodes a revocation body the way the API documents it and
// reports why it must be refused ("" when it is a valid request shape).
// A scope must be of one of scopes, an issuer one of issuers.
func fuzzRequest(contentType string, body []byte, now time.Time, scopes, issuers []string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	switch {
	case err != nil || mt != fuzzJSON:
		return "content type"
	case len(body) > httpx.DefaultMaxBody:
		return "too large"
	case !utf8.Valid(body):
		return "not UTF-8"
	}
	var req Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return "not a Request: " + err.Error()
	}
	if _, err := dec.Token(); err != io.EOF {
		return "trailing data"
	}
	if len(req.Reason) > 256 || len(req.Initiator) > 256 {
		return "reason or initiator too long"
	}
	only := func(set ...bool) bool {
		n := 0
		for _, s := range set {
			if s {
				n++
			}
		}
		return n == 1
	}
	jti, exp, tok, sid, sub, kid := req.JTI != "", req.Exp != nil, req.Token != "", req.SID != "", req.Sub != "", req.KID != ""
	claim, value := req.Claim != "", req.Value != ""
	switch req.Type {
	case "session":
		if !sid || !only(sid, jti, exp, tok, sub, kid, claim, value) {
			return "session fields"
		}
	case "subject":
		if !sub || !only(sub, jti, exp, tok, sid, kid, claim, value) {
			return "subject fields"
		}
	case "key":
		if !kid || !only(kid, jti, exp, tok, sid, sub, claim, value) {
			return "key fields"
		}
	case "scope":
		if !claim || !value || !only(value, jti, exp, tok, sid, sub, kid) {
			return "scope fields"
		}
		if !slices.Contains(scopes, req.Claim) {
			return "a claim not configured"
		}
	case "issuer":
		if !only(true, jti, exp, tok, sid, sub, kid, claim, value) {
			return "issuer fields"
		}
		if !slices.Contains(issuers, req.Iss) {
			return "an unknown issuer"
		}
	case "token":
		switch {
		case sid || sub || kid || claim || value:
			return "token fields"
		case tok && (jti || exp):
			return "token and jti/exp"
		case tok:
		case !jti || !exp:
			return "jti without exp"
		default:
			// The token must still be alive (leeway aside) and live no
			// longer than the longest lifetime.
			if f := *req.Exp; f < float64(now.Add(-time.Minute).Unix()) || f > float64(now.Add(2*time.Hour).Unix()) {
				return fmt.Sprintf("implausible exp %v", *req.Exp)
			}
		}
	default:
		return "unknown type"
	}
	return ""
}

func FuzzRevocations(f *testing.F) {
	scopes := []string{"tenant"}
	e := newEnv(f, func(c *Config) { c.EpochScopes = scopes })
	exp := float64(time.Now().Add(10*time.Minute).Unix()) + 0.25
	tok := e.iss.Token(f, verifiertest.TokenOptions{})
	expired := e.iss.Token(f, verifiertest.TokenOptions{TTL: -time.Hour})
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	valid := [][]byte{
		[]byte(`{"type":"session","sid":"s-1"}`),
		[]byte(`{"type":"subject","sub":"user-1","reason":"logout_all","initiator":"admin"}`),
		[]byte(`{"type":"key","kid":"kid-not-in-use"}`),
		mustJSON(Request{Type: "token", JTI: "jti-1", Exp: &exp}),
		mustJSON(Request{Type: "token", Token: tok}),
		[]byte(`{"type":"scope","claim":"tenant","value":"acme"}`),
		[]byte(`{"type":"scope","claim":"tenant","value":"acme","iss":"https://idp.example.test/"}`),
		mustJSON(Request{Type: "issuer", Iss: e.iss.Issuer()}),
	}
	broken := [][]byte{
		nil,
		[]byte(`{`),
		[]byte(`[]`),
		[]byte(`null`),
		[]byte(`{}`),
		[]byte(`{} {}`),
		[]byte(`{"type":"session","sid":"s-1"`),
		[]byte(`{"type":"session","sid":"s-1"} x`),
		[]byte(`{"type":"session","sid":""}`),
		[]byte(`{"type":"session","sid":1}`),
		[]byte(`{"type":"session","sid":"s-1","jti":"x"}`),
		[]byte(`{"type":"session","sid":"s-1","sub":""}`),
		[]byte(`{"type":"session","sid":"s-1","extra":true}`),
		[]byte(`{"type":"session","type":"subject","sid":"s-1"}`),
		[]byte(`{"TYPE":"session","SID":"s-1"}`),
		[]byte(`{"type":"bogus","sid":"s-1"}`),
		[]byte(`{"type":"","sid":"s-1"}`),
		[]byte(`{"type":null}`),
		[]byte(`{"type":"token","jti":"j"}`),
		[]byte(`{"type":"token","exp":1}`),
		[]byte(`{"type":"token","jti":"j","exp":1}`),
		[]byte(`{"type":"token","jti":"j","exp":-1}`),
		[]byte(`{"type":"token","jti":"j","exp":1e300}`),
		[]byte(`{"type":"token","jti":"j","exp":1e999}`),
		[]byte(`{"type":"token","jti":"j","exp":"soon"}`),
		[]byte(`{"type":"token","jti":"j","exp":99999999999}`),
		[]byte(`{"type":"token","token":""}`),
		[]byte(`{"type":"token","token":"a.b.c"}`),
		mustJSON(Request{Type: "token", Token: expired}),
		mustJSON(Request{Type: "token", Token: tok, JTI: "j"}),
		[]byte(`{"type":"session","sid":"` + strings.Repeat("s", 300) + `"}`),
		[]byte(`{"type":"session","sid":"a b.c*>"}`),
		[]byte(`{"type":"session","sid":"s\u0000"}`),
		[]byte(`{"type":"session","sid":"s-1","reason":"` + strings.Repeat("r", 300) + `"}`),
		[]byte(`{"type":"session","sid":"` + strings.Repeat("s", 20<<10) + `"}`),
		[]byte("{\"type\":\"session\",\"sid\":\"s\xff\"}"),
		[]byte(`{"type":"session","sid":"\ud800"}`),
		[]byte(`{"type":"session","sid":` + strings.Repeat("[", 5000) + `}`),
		[]byte(`{"type":"scope","claim":"org","value":"acme"}`),
		[]byte(`{"type":"scope","claim":"sub","value":"alice"}`),
		[]byte(`{"type":"scope","claim":"iss","value":"https://issuer.test"}`),
		[]byte(`{"type":"scope","claim":"tenant"}`),
		[]byte(`{"type":"scope","claim":"tenant","value":"acme","sid":"s"}`),
		[]byte(`{"type":"issuer"}`),
		[]byte(`{"type":"issuer","iss":"https://typo.example.test/"}`),
		[]byte(`{"type":"issuer","iss":"https://issuer.test","value":"x"}`),
		[]byte(`{"type":"subject","sub":"u","claim":"tenant"}`),
	}
	for _, b := range valid {
		f.Add(b, fuzzJSON, "")
		f.Add(b, fuzzJSON, "idem-"+fmt.Sprint(len(b)))
	}
	f.Add(valid[0], "application/json; charset=utf-8", "k")
	f.Add(valid[0], fuzzForm, "")
	f.Add(valid[0], "", "")
	f.Add(valid[0], fuzzJSON, strings.Repeat("k", MaxIdempotencyKeyLen+1))
	f.Add(valid[0], fuzzJSON, "key\x00\n")
	f.Add(valid[1], fuzzJSON, "idem-"+fmt.Sprint(len(valid[0]))) // key reused for another revocation
	for _, b := range broken {
		f.Add(b, fuzzJSON, "")
	}

	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType, key string) {
		a := fuzzServe(t, h, "/v1/revocations", contentType, body,
			map[string]string{"Authorization": "Bearer " + testCredential, "Idempotency-Key": key})
		httpxtest.CheckAnswer(t, a.status, a.body, body)
		if a.status < 200 || a.status >= 300 {
			return
		}
		if a.status != http.StatusCreated {
			t.Fatalf("status %d for %q", a.status, body)
		}
		if why := fuzzRequest(contentType, body, time.Now(), scopes, []string{e.iss.Issuer()}); why != "" {
			t.Fatalf("201 for an invalid revocation (%s) %q (%s)", why, body, contentType)
		}
		if len(key) > MaxIdempotencyKeyLen || strings.ContainsFunc(key, func(r rune) bool { return r < 0x20 || r > 0x7e }) {
			t.Fatalf("201 with an invalid Idempotency-Key %q", key)
		}
		a.result(t)
	})
}

func FuzzIntrospect(f *testing.F) {
	e := newEnv(f, nil)
	// Only these jtis can be active: the fuzzer cannot sign tokens.
	jtis := map[string]bool{"fuzz-jti-1": true}
	tok := e.iss.Token(f, verifiertest.TokenOptions{JTI: "fuzz-jti-1", TTL: time.Hour})
	expired := e.iss.Token(f, verifiertest.TokenOptions{TTL: -time.Hour})
	alien := verifiertest.NewIssuer(f).Token(f, verifiertest.TokenOptions{})
	for _, s := range []string{
		url.Values{"token": {tok}, "token_type_hint": {"access_token"}}.Encode(),
		url.Values{"token": {tok}}.Encode(),
		url.Values{"token": {tok}, "token_type_hint": {"refresh_token"}}.Encode(),
		url.Values{"token": {expired}}.Encode(),
		url.Values{"token": {alien}}.Encode(),
		url.Values{"token": {tok}}.Encode() + "&token=x",
		"token=a.b.c",
		"token=..",
		"token=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"token=x",
		"token=",
		"token_type_hint=access_token",
		"token=%zz",
		"token=%ff%fe",
		"token=x;y=z",
		"token=" + strings.Repeat("x", 20<<10),
		"",
	} {
		f.Add([]byte(s), fuzzForm)
	}
	f.Add([]byte("token="+tok), "application/x-www-form-urlencoded; charset=utf-8")
	f.Add([]byte("token="+tok), fuzzJSON)
	f.Add([]byte(`{"token":"x"}`), fuzzJSON)
	f.Add([]byte("token=x"), "")

	h := e.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		a := fuzzServe(t, h, "/oauth2/introspect", contentType, body,
			map[string]string{"Authorization": "Bearer " + testCredential})
		httpxtest.CheckAnswer(t, a.status, a.body, body)
		if a.status < 200 || a.status >= 300 {
			return
		}
		// A 200 needs a well-formed form naming a token.
		form, ok := httpxtest.StrictForm(contentType, body)
		if a.status != http.StatusOK || !ok || form.Get("token") == "" {
			t.Fatalf("status %d for an invalid introspection %q (%s): %s", a.status, body, contentType, a.body)
		}
		var in Introspection
		dec := json.NewDecoder(bytes.NewReader(a.body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			t.Fatalf("introspection answer %q: %v", a.body, err)
		}
		if in.Active && (!jtis[in.JTI] || in.Subject != verifiertest.DefaultSubject || in.TokenType != "access_token") {
			t.Fatalf("active introspection %+v for %q", in, body)
		}
		if !in.Active && (in.Subject != "" || in.JTI != "" || in.Issuer != "" || in.Audience != nil || in.ExpiresAt != 0 || in.TokenType != "") {
			t.Fatalf("inactive introspection carries claims: %q", a.body)
		}
	})
}
