package process

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

// TestFlags: a flag on the command line wins over its environment
// variable, which wins over the default; bad values are reported with the
// variable's name; a deprecated alias still works and warns; a retired
// flag is accepted, changes nothing and warns.
func TestFlags(t *testing.T) {
	type got struct {
		listen string
		ttl    time.Duration
		on     bool
	}
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		want     got
		wantErr  string
		wantWarn string
	}{
		{name: "defaults", want: got{listen: ":8080", ttl: time.Minute}},
		{name: "env", env: map[string]string{"JWTREVOKE_LISTEN": ":9000", "JWTREVOKE_TTL": "2m", "JWTREVOKE_NEW_NAME": "true"},
			want: got{listen: ":9000", ttl: 2 * time.Minute, on: true}},
		{name: "flag wins", args: []string{"-listen", ":7000"}, env: map[string]string{"JWTREVOKE_LISTEN": ":9000"},
			want: got{listen: ":7000", ttl: time.Minute}},
		{name: "bad env value", env: map[string]string{"JWTREVOKE_TTL": "soon"}, wantErr: `JWTREVOKE_TTL="soon"`},
		{name: "deprecated flag", args: []string{"-old-name"}, want: got{listen: ":8080", ttl: time.Minute, on: true},
			wantWarn: "-old-name is deprecated, use -new-name"},
		{name: "deprecated env", env: map[string]string{"JWTREVOKE_OLD_NAME": "true"}, want: got{listen: ":8080", ttl: time.Minute, on: true},
			wantWarn: "JWTREVOKE_OLD_NAME is deprecated, use JWTREVOKE_NEW_NAME"},
		{name: "retired flag", args: []string{"-stream", "other", "-listen", ":7000"}, want: got{listen: ":7000", ttl: time.Minute},
			wantWarn: "-stream no longer has an effect: the issuer reads no stream"},
		{name: "retired bool flag without a value", args: []string{"-fallback", "-listen", ":7000"}, want: got{listen: ":7000", ttl: time.Minute},
			wantWarn: "-fallback no longer has an effect: always on"},
		{name: "retired env", env: map[string]string{"JWTREVOKE_STREAM": "other"}, want: got{listen: ":8080", ttl: time.Minute},
			wantWarn: "JWTREVOKE_STREAM no longer has an effect: the issuer reads no stream"},
		{name: "stray argument", args: []string{"x"}, wantErr: "unexpected arguments"},
		{name: "help", args: []string{"-h"}, wantErr: flag.ErrHelp.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			var g got
			f := NewFlags("test", "", &out)
			f.Listen(&g.listen, ":8080")
			f.Set.DurationVar(&g.ttl, "ttl", time.Minute, "a lifetime")
			f.Set.BoolVar(&g.on, "new-name", false, "a switch")
			f.Deprecated("old-name", "new-name")
			f.Retired("stream", "the issuer reads no stream", false)
			f.Retired("fallback", "always on", true)
			err := f.Parse(tt.args, func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || g != tt.want {
				t.Fatalf("Parse = %v, %+v; want %+v", err, g, tt.want)
			}
			if !strings.Contains(out.String(), tt.wantWarn) || (tt.wantWarn == "" && out.Len() > 0) {
				t.Fatalf("output %q, want warning %q", out.String(), tt.wantWarn)
			}
		})
	}
}

// TestFlagsHelp: -h lists every flag but deprecated aliases and retired flags, each with its
// environment name and default.
func TestFlagsHelp(t *testing.T) {
	var out bytes.Buffer
	var s string
	var b bool
	f := NewFlags("test", "Secrets: JWTREVOKE_SECRET.", &out)
	f.Listen(&s, ":8080")
	f.Set.BoolVar(&b, "new-name", false, "a switch")
	f.Deprecated("old-name", "new-name")
	f.Retired("retired-name", "gone", false)
	if err := f.Parse([]string{"-h"}, func(string) string { return "" }); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Parse(-h) = %v", err)
	}
	for _, want := range []string{
		"Secrets: JWTREVOKE_SECRET.",
		"  -listen string\n    \tHTTP listen address (env JWTREVOKE_LISTEN; default :8080)\n",
		"  -new-name\n    \ta switch (env JWTREVOKE_NEW_NAME; default false)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "old-name") || strings.Contains(out.String(), "retired-name") {
		t.Errorf("-h lists the deprecated alias or the retired flag:\n%s", out.String())
	}
}
