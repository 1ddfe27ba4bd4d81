package providers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

const hydra = `{"providers": [{
  "name": "hydra",
  "issuer": "https://login.example.com/",
  "discovery": true,
  "audiences": ["api"],
  "algorithms": ["RS256"],
  "backchannel_logout": {"client_id": "my-client", "max_age": "2m"}
}, {
  "name": "entra",
  "issuer": "https://login.microsoftonline.com/tenant/v2.0",
  "jwks_url": "https://login.microsoftonline.com/tenant/discovery/v2.0/keys",
  "audiences": ["api://my-api"],
  "algorithms": ["RS256"],
  "token_id_claim": "uti"
}]}`

// TestParse: a valid file gives every setting; each mistake is refused,
// all at once, in the file's own terms.
func TestParse(t *testing.T) {
	ps, err := Parse([]byte(hydra))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "hydra" || !ps[0].Discovery || ps[0].BackchannelLogout.ClientID != "my-client" ||
		ps[1].TokenIDClaim != "uti" || ps[1].BackchannelLogout != nil {
		t.Fatalf("parsed %+v", ps)
	}
	for _, tt := range []struct{ name, file, want string }{
		{"not JSON", `{"providers": [`, "not valid JSON"},
		{"a misspelt field", `{"providers": [{"name": "a", "issuer": "i", "jwks_uri": "https://x"}]}`, `unknown field "jwks_uri"`},
		{"no list", `{}`, `no "providers" list`},
		{"a list of the wrong type", `{"providers": {}}`, `"providers" must be an array`},
		{"two objects", `{"providers": []} {}`, "data after"},
		{"a bad name", `{"providers": [{"name": "Hydra Prod", "issuer": "i", "discovery": true}]}`, `providers[0] (Hydra Prod): name "Hydra Prod" must be`},
		{"a name twice", `{"providers": [{"name": "a", "issuer": "i", "discovery": true}, {"name": "a", "issuer": "j", "discovery": true}]}`, "providers[1] (a): name used twice"},
		{"no issuer", `{"providers": [{"name": "a", "discovery": true}]}`, `"issuer" is required`},
		{"no keys", `{"providers": [{"name": "a", "issuer": "i"}]}`, `exactly one of "jwks_url" and "discovery"`},
		{"both keys", `{"providers": [{"name": "a", "issuer": "i", "discovery": true, "jwks_url": "https://x"}]}`, `exactly one of`},
		{"no client id", `{"providers": [{"name": "a", "issuer": "i", "discovery": true, "backchannel_logout": {}}]}`, `"client_id" is required`},
		{"a bad max_age", `{"providers": [{"name": "a", "issuer": "i", "discovery": true, "backchannel_logout": {"client_id": "c", "max_age": "ten minutes"}}]}`, `"max_age" "ten minutes" is not a positive duration`},
		{"a bad revoke", `{"providers": [{"name": "a", "issuer": "i", "discovery": true, "backchannel_logout": {"client_id": "c", "revoke": "everything"}}]}`, `"revoke" "everything" must be "session" or "subject"`},
		{"ssf without audience or credential", `{"providers": [{"name": "a", "issuer": "i", "discovery": true, "ssf": {}}]}`, `"ssf": "audience" is required`},
		{"ssf without delivery", `{"providers": [{"name": "a", "issuer": "i", "discovery": true, "ssf": {"audience": "r"}}]}`, `"ssf": give "push_credential_file" (push delivery), "poll_url" (poll delivery) or both`},
		{"ssf poll without credential", `{"providers": [{"name": "a", "issuer": "i", "discovery": true, "ssf": {"audience": "r", "poll_url": "https://x"}}]}`, `"poll_url" and "poll_credential_file" go together`},
	} {
		if _, err := Parse([]byte(tt.file)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestLoad: errors name the file; an oversized file is refused before it
// is parsed.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "providers.json")
	if err := os.WriteFile(path, []byte(hydra), 0o600); err != nil {
		t.Fatal(err)
	}
	if ps, err := Load(path); err != nil || len(ps) != 2 {
		t.Fatalf("Load: %v, %v", ps, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.json")
	if err := os.WriteFile(big, []byte(`{"providers": [`+strings.Repeat(" ", MaxFileSize)+`]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"providers": [{"name": "a"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); err == nil || !strings.HasPrefix(err.Error(), "providers file "+bad+": providers[0] (a):") {
		t.Errorf("invalid file: %v", err)
	}
}

// TestBuild: a provider's entry becomes a key source of the right kind,
// the verifier's trust rules and a logout checker with its settings.
func TestBuild(t *testing.T) {
	ps, err := Parse([]byte(hydra))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ps[0].Keys(KeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := keys.(*verifier.Discovery); !ok {
		t.Errorf("discovery: keys are %T", keys)
	}
	if k, err := ps[1].Keys(KeyOptions{}); err != nil {
		t.Errorf("jwks_url: %v", err)
	} else if _, ok := k.(*verifier.JWKS); !ok {
		t.Errorf("jwks_url: keys are %T", k)
	}
	tr := ps[1].Trust(keys)
	if tr.Name != "entra" || tr.TokenIDClaim != "uti" || tr.Audiences[0] != "api://my-api" {
		t.Errorf("trust %+v", tr)
	}
	lc, err := ps[0].LogoutChecker(keys)
	if err != nil || lc == nil {
		t.Fatalf("LogoutChecker: %v, %v", lc, err)
	}
	if w := lc.ReplayWindow(); w != 2*time.Minute+2*verifier.DefaultLeeway {
		t.Errorf("ReplayWindow %s: max_age not applied", w)
	}
	if lc, err := ps[1].LogoutChecker(keys); lc != nil || err != nil {
		t.Errorf("no backchannel_logout: %v, %v", lc, err)
	}
	// SSF: the SET checker and the push credentials from their file.
	credFile := filepath.Join(t.TempDir(), "ssf")
	if err := os.WriteFile(credFile, []byte("first-credential-0123456789\n\nsecond-credential-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withSSF := ps[0]
	withSSF.SSF = &SSF{Audience: "https://revoker.example.com/", PushCredentialFile: credFile}
	sc, creds, err := withSSF.SETChecker(keys)
	if err != nil || sc == nil || len(creds) != 2 || creds[1] != "second-credential-0123456789" {
		t.Errorf("SETChecker: %v, %q, %v", sc, creds, err)
	}
	if w := sc.ReplayWindow(); w != verifier.DefaultSETMaxAge+2*verifier.DefaultLeeway {
		t.Errorf("SET ReplayWindow %s", w)
	}
	withSSF.SSF.PushCredentialFile = filepath.Join(t.TempDir(), "missing")
	if _, _, err := withSSF.SETChecker(keys); err == nil || !strings.Contains(err.Error(), "ssf push credential") {
		t.Errorf("missing credential file: %v", err)
	}
	withSSF.SSF = &SSF{Audience: "r", PollURL: "https://idp.example.com/ssf/poll", PollCredentialFile: credFile, PollInterval: "5s"}
	if u, cred, every, ok, err := withSSF.Poll(); !ok || err != nil || u != "https://idp.example.com/ssf/poll" ||
		cred != "first-credential-0123456789" || every != 5*time.Second {
		t.Errorf("Poll: %q %q %s %v %v", u, cred, every, ok, err)
	}
	if sc, creds, err := withSSF.SETChecker(keys); sc == nil || creds != nil || err != nil {
		t.Errorf("poll-only SETChecker: %v, %q, %v", sc, creds, err)
	}
	if sc, _, err := ps[1].SETChecker(keys); sc != nil || err != nil {
		t.Errorf("no ssf: %v, %v", sc, err)
	}
	http := Provider{Name: "a", Issuer: "http://idp.internal/", Discovery: true}
	if _, err := http.Keys(KeyOptions{}); err == nil || !strings.Contains(err.Error(), "provider a") {
		t.Errorf("http issuer: %v", err)
	}
	if _, err := http.Keys(KeyOptions{InsecureJWKSOverHTTP: true}); err != nil {
		t.Errorf("http issuer, insecure allowed: %v", err)
	}
}

// FuzzParse: any bytes are refused with an error or give providers that
// keep Parse's promises (valid, unique names; an issuer; one key source).
func FuzzParse(f *testing.F) {
	f.Add([]byte(hydra))
	f.Add([]byte(`{"providers": []}`))
	f.Add([]byte(`{"providers": [{"name": "a", "issuer": "i", "discovery": true, "backchannel_logout": {"client_id": "c", "max_age": "-1s"}}]}`))
	f.Add([]byte(`{"providers": null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := Parse(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range ps {
			if ValidName(p.Name) != nil || seen[p.Name] || p.Issuer == "" || (p.JWKSURL == "") == !p.Discovery {
				t.Fatalf("Parse(%q) accepted %+v", data, p)
			}
			seen[p.Name] = true
			if b := p.BackchannelLogout; b != nil {
				if d, err := maxAge(b.MaxAge); b.ClientID == "" || err != nil || d < 0 {
					t.Fatalf("Parse(%q) accepted backchannel %+v", data, b)
				}
			}
		}
	})
}
