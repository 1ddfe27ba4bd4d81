package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestParse: the required settings are named when missing, a header set to
// "none" is left out, and the environment fills what the command line
// does not give.
func TestParse(t *testing.T) {
	var out bytes.Buffer
	if code := run(nil, func(string) string { return "" }, &out); code != 1 ||
		!strings.Contains(out.String(), "missing required settings: -issuer, -audience, -jwks-url") {
		t.Errorf("no settings: exit %d, %q", code, out.String())
	}
	env := map[string]string{"JWTREVOKE_ISSUER": "https://auth.example.com", "JWTREVOKE_AUDIENCE": "api",
		"JWTREVOKE_JWKS_URL": "https://auth.example.com/jwks", "JWTREVOKE_HEADER_CLAIMS": "none"}
	o, err := parse([]string{"-header-subject", "X-User", "-listen", "unix:/run/v.sock"}, func(k string) string { return env[k] }, &out)
	if err != nil {
		t.Fatal(err)
	}
	if o.headers.Subject != "X-User" || o.headers.Claims != "" || o.headers.Session != "X-Auth-Session" || o.listen != "unix:/run/v.sock" ||
		o.verifier.Issuer != "https://auth.example.com" {
		t.Errorf("parsed %+v", o)
	}
	if code := run([]string{"-realm", `a"b`}, func(k string) string { return env[k] }, &out); code != 1 {
		t.Errorf("a realm that cannot be quoted: exit %d, want 1", code)
	}
}
