package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParse: flags, their JWTREVOKE_ fallbacks, secrets from the
// environment or files, and the required settings.
func TestParse(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "refresh")
	if err := os.WriteFile(secretFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	credFile := filepath.Join(dir, "creds")
	if err := os.WriteFile(credFile, []byte("cred-one-0123456789\ncred-two-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := map[string]string{
		"JWTREVOKE_ISSUER":             "https://auth.example",
		"JWTREVOKE_AUDIENCE":           "api,admin",
		"JWTREVOKE_KEY_DIR":            dir,
		"JWTREVOKE_REFRESH_SECRET":     "0123456789abcdef0123456789abcdef",
		"JWTREVOKE_REVOKER_CREDENTIAL": "revoker-cred-0123456789",
	}
	env := func(over map[string]string) func(string) string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range over {
			m[k] = v
		}
		return func(k string) string { return m[k] }
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{name: "defaults", check: func(t *testing.T, o options) {
			if o.listen != ":8081" || o.accessTTL != 5*time.Minute || !o.cookieSecure || o.setCookie || o.redisAddrs != "127.0.0.1:6379" {
				t.Fatalf("%+v", o)
			}
		}},
		{name: "env fallbacks", env: map[string]string{"JWTREVOKE_LISTEN": ":9000", "JWTREVOKE_ACCESS_TTL": "2m", "JWTREVOKE_COOKIE_SECURE": "false",
			"JWTREVOKE_SERVICE_CREDENTIALS": "a-credential-0123456, b-credential-0123456"}, check: func(t *testing.T, o options) {
			if o.listen != ":9000" || o.accessTTL != 2*time.Minute || o.cookieSecure ||
				!slices.Equal(o.serviceCredentials, []string{"a-credential-0123456", "b-credential-0123456"}) {
				t.Fatalf("%+v", o)
			}
		}},
		{name: "retired NATS settings accepted", args: []string{"-stream", "revocations", "-nats-creds", "/x.creds"},
			env: map[string]string{"JWTREVOKE_NATS_URL": "nats://n1:4222"}, check: func(t *testing.T, o options) {
				if o.listen != ":8081" {
					t.Fatalf("%+v", o)
				}
			}},
		{name: "flags win over env", args: []string{"-listen", ":7000", "-access-ttl", "1m"}, env: map[string]string{"JWTREVOKE_LISTEN": ":9000"}, check: func(t *testing.T, o options) {
			if o.listen != ":7000" || o.accessTTL != time.Minute {
				t.Fatalf("%+v", o)
			}
		}},
		{name: "secrets from files", args: []string{"-refresh-secret-file", secretFile, "-service-credentials-file", credFile},
			env: map[string]string{"JWTREVOKE_REFRESH_SECRET": ""}, check: func(t *testing.T, o options) {
				if o.refreshSecret != "0123456789abcdef0123456789abcdef" || len(o.serviceCredentials) != 2 {
					t.Fatalf("%+v", o)
				}
			}},
		{name: "missing required", env: map[string]string{"JWTREVOKE_ISSUER": "", "JWTREVOKE_REFRESH_SECRET": ""}, wantErr: "missing required settings"},
		{name: "unreadable secret file", args: []string{"-refresh-secret-file", filepath.Join(dir, "nope")}, env: map[string]string{"JWTREVOKE_REFRESH_SECRET": ""}, wantErr: "refresh secret"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "not defined"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parse(tt.args, env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

// TestRunBadConfig: a bad configuration exits 1 before connecting to
// anything.
func TestRunBadConfig(t *testing.T) {
	if code := run([]string{"-issuer", "https://x"}, func(string) string { return "" }); code != 1 {
		t.Fatalf("exit code %d", code)
	}
	env := func(k string) string {
		return map[string]string{
			"JWTREVOKE_ISSUER": "https://x", "JWTREVOKE_AUDIENCE": "api", "JWTREVOKE_KEY_DIR": t.TempDir(),
			"JWTREVOKE_REFRESH_SECRET": "0123456789abcdef0123456789abcdef", "JWTREVOKE_REVOKER_CREDENTIAL": "c-0123456789abcdef",
		}[k]
	}
	if code := run(nil, env); code != 1 { // empty key directory
		t.Fatalf("exit code %d", code)
	}
}
