package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	required := map[string]string{
		"JWTREVOKE_ISSUER":              "https://issuer.example",
		"JWTREVOKE_AUDIENCE":            "api,admin",
		"JWTREVOKE_JWKS_URL":            "https://issuer.example/.well-known/jwks.json",
		"JWTREVOKE_SERVICE_CREDENTIALS": "credential-one-0123456789, credential-two-0123456789",
	}
	credFile := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(credFile, []byte("file-credential-0123456789\n\nsecond-credential-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string // merged over required; "" removes
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{
			name: "defaults",
			check: func(t *testing.T, o options) {
				if o.listen != ":8082" || o.replicas != 1 || o.maxTokenLifetime != time.Hour {
					t.Errorf("defaults: %+v", o)
				}
				if !slices.Equal(o.credentials, []string{"credential-one-0123456789", "credential-two-0123456789"}) {
					t.Errorf("credentials %q", o.credentials)
				}
			},
		},
		{
			name: "env fallback",
			env: map[string]string{"JWTREVOKE_NATS_URL": "nats://n1:4222,nats://n2:4222", "JWTREVOKE_STREAM_REPLICAS": "3",
				"JWTREVOKE_STALE_FALLBACK": "false", "JWTREVOKE_MAX_STALENESS": "1s", "JWTREVOKE_REDIS_PASSWORD": "pw", "JWTREVOKE_LEEWAY": "2s"},
			check: func(t *testing.T, o options) {
				if o.natsURL != "nats://n1:4222,nats://n2:4222" || o.replicas != 3 || o.redisPwd != "pw" || o.leeway != 2*time.Second {
					t.Errorf("env not applied: %+v", o)
				}
			},
		},
		{
			name: "flag wins over env",
			args: []string{"-listen", ":9999", "-stream-replicas", "5"},
			env:  map[string]string{"JWTREVOKE_LISTEN": ":1111", "JWTREVOKE_STREAM_REPLICAS": "bogus"},
			check: func(t *testing.T, o options) {
				if o.listen != ":9999" || o.replicas != 5 {
					t.Errorf("flag did not win: %+v", o)
				}
			},
		},
		{
			name: "credentials from a file",
			args: []string{"-service-credentials-file", credFile},
			env:  map[string]string{"JWTREVOKE_SERVICE_CREDENTIALS": ""},
			check: func(t *testing.T, o options) {
				if !slices.Equal(o.credentials, []string{"file-credential-0123456789", "second-credential-0123456789"}) {
					t.Errorf("credentials %q", o.credentials)
				}
			},
		},
		{
			name: "console off by default",
			check: func(t *testing.T, o options) {
				if len(o.consoleCredentials) != 0 || o.consoleSession != 8*time.Hour {
					t.Errorf("console by default: %q %s", o.consoleCredentials, o.consoleSession)
				}
			},
		},
		{
			name: "console credentials from a file",
			args: []string{"-console-credentials-file", credFile, "-console-session", "1h"},
			check: func(t *testing.T, o options) {
				if !slices.Equal(o.consoleCredentials, []string{"file-credential-0123456789", "second-credential-0123456789"}) || o.consoleSession != time.Hour {
					t.Errorf("console credentials %q, session %s", o.consoleCredentials, o.consoleSession)
				}
			},
		},
		{
			name: "console credentials from the environment",
			env:  map[string]string{"JWTREVOKE_CONSOLE_CREDENTIALS": "console-credential-0123456789"},
			check: func(t *testing.T, o options) {
				if !slices.Equal(o.consoleCredentials, []string{"console-credential-0123456789"}) {
					t.Errorf("console credentials %q", o.consoleCredentials)
				}
			},
		},
		{name: "missing console credentials file", args: []string{"-console-credentials-file", "/nonexistent"}, wantErr: "console credentials"},
		{name: "bad env value", env: map[string]string{"JWTREVOKE_MAX_TOKEN_LIFETIME": "an hour"}, wantErr: "JWTREVOKE_MAX_TOKEN_LIFETIME"},
		{name: "missing issuer", env: map[string]string{"JWTREVOKE_ISSUER": ""}, wantErr: "-issuer"},
		{name: "missing credentials", env: map[string]string{"JWTREVOKE_SERVICE_CREDENTIALS": ""}, wantErr: "SERVICE_CREDENTIALS"},
		{name: "missing credentials file", args: []string{"-service-credentials-file", "/nonexistent"}, env: map[string]string{"JWTREVOKE_SERVICE_CREDENTIALS": ""}, wantErr: "service credentials"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range required {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			o, err := parse(tt.args, func(k string) string { return env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parse error %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			tt.check(t, o)
		})
	}
}

func TestRunBadConfigExitsOne(t *testing.T) {
	var stderr strings.Builder
	if code := run(nil, func(string) string { return "" }, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "missing required settings") {
		t.Errorf("stderr %q does not say what is missing", stderr.String())
	}
}

// TestRunBadProvidersFileExitsOne: a providers file with a mistake stops
// the start, saying which file and which entry, before anything is
// connected.
func TestRunBadProvidersFileExitsOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "providers.json")
	if err := os.WriteFile(path, []byte(`{"providers": [{"name": "hydra", "issuer": "https://idp.example.test/", "discovery": true,
		"backchannel_logout": {}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"JWTREVOKE_ISSUER": "https://issuer.example.test", "JWTREVOKE_AUDIENCE": "api",
		"JWTREVOKE_JWKS_URL": "https://issuer.example.test/jwks", "JWTREVOKE_SERVICE_CREDENTIALS": "a-credential-of-enough-length",
		"JWTREVOKE_PROVIDERS": path,
	}
	var stderr strings.Builder
	if code := run(nil, func(k string) string { return env[k] }, &stderr); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	var line struct{ Msg, Err string }
	if err := json.Unmarshal([]byte(stderr.String()), &line); err != nil {
		t.Fatalf("stderr %q is not one JSON log line: %v", stderr.String(), err)
	}
	if want := "providers file " + path + `: providers[0] (hydra): "backchannel_logout": "client_id" is required`; line.Err != want {
		t.Errorf("logged error %q, want %q", line.Err, want)
	}
}
