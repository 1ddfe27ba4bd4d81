package revoker

import (
	"net/http"
	"strings"
	"testing"
)

// TestBadBodySaysWhatIsWrong: a refused revocation body is described in
// the client's terms, never with Go's type names.
func TestBadBodySaysWhatIsWrong(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "array", body: `[{"type":"session","sid":"s"}]`, want: "body must be a JSON object"},
		{name: "wrong type", body: `{"type":"session","sid":1}`, want: `field "sid" must be a string`},
		{name: "unknown field", body: `{"type":"session","sid":"s","x":1}`, want: `unknown field "x"`},
		{name: "syntax", body: `{"type":}`, want: "body is not valid JSON at offset 9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.revokeJSON(t, tt.body, "")
			code, desc := a.errorBody(t)
			if a.status != http.StatusBadRequest || code != "invalid_request" || desc != tt.want {
				t.Fatalf("%s: %d %s %q, want 400 invalid_request %q", tt.body, a.status, code, desc, tt.want)
			}
			if strings.Contains(desc, "Go ") || strings.Contains(desc, "unmarshal") {
				t.Fatalf("description shows Go internals: %q", desc)
			}
		})
	}
}
