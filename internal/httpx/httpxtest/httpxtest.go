// Package httpxtest holds the oracles the services' fuzz tests share: what
// every answer must look like, and an independent, strict reading of the
// bodies the API promises to accept. Test-only.
package httpxtest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/url"
	"testing"
	"unicode/utf8"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
)

// CheckAnswer fails tb unless an answer to input in is never a 5xx and,
// when it is not a 2xx, carries a JSON error with a non-empty "error".
func CheckAnswer(tb testing.TB, status int, body, in []byte) {
	tb.Helper()
	if status >= 500 {
		tb.Fatalf("status %d for body %q: %s", status, in, body)
	}
	if status >= 200 && status < 300 {
		return
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		tb.Fatalf("status %d for body %q: answer %q is not a JSON error", status, in, body)
	}
}

// StrictJSON decodes body into v the way the API promises to read it:
// content type application/json, at most httpx.DefaultMaxBody bytes, UTF-8,
// one object, no unknown fields, nothing after it. It reports whether the
// body is acceptable.
func StrictJSON(contentType string, body []byte, v any) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/json" || len(body) > httpx.DefaultMaxBody || !utf8.Valid(body) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false
	}
	_, err = dec.Token()
	return err == io.EOF
}

// StrictForm parses body the way the API promises to: content type
// application/x-www-form-urlencoded, at most httpx.DefaultMaxBody bytes,
// valid escapes, UTF-8, no parameter given twice. ok is false when it must
// be refused.
func StrictForm(contentType string, body []byte) (form url.Values, ok bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt != "application/x-www-form-urlencoded" || len(body) > httpx.DefaultMaxBody {
		return nil, false
	}
	form, err = url.ParseQuery(string(body))
	if err != nil {
		return nil, false
	}
	for k, vs := range form {
		if len(vs) != 1 || !utf8.ValidString(k) || !utf8.ValidString(vs[0]) {
			return nil, false
		}
	}
	return form, true
}
