package httpx

import (
	"errors"
	"go/build"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name    string
		authz   []string
		cookie  string // value of the cookie "at" sent
		named   string // cookie name BearerToken is given
		want    string
		wantErr error
	}{
		{name: "bearer", authz: []string{"Bearer abc.def"}, want: "abc.def"},
		{name: "scheme in any case", authz: []string{"bEARER abc"}, want: "abc"},
		{name: "several spaces (RFC 6750 1*SP)", authz: []string{"Bearer   abc"}, want: "abc"},
		{name: "none", wantErr: ErrNoBearer},
		{name: "basic", authz: []string{"Basic YTpi"}, wantErr: ErrMalformedAuthorization},
		{name: "scheme only", authz: []string{"Bearer"}, wantErr: ErrMalformedAuthorization},
		{name: "empty token", authz: []string{"Bearer "}, wantErr: ErrMalformedAuthorization},
		{name: "two tokens", authz: []string{"Bearer abc def"}, wantErr: ErrMalformedAuthorization},
		{name: "tab in token", authz: []string{"Bearer abc\tdef"}, wantErr: ErrMalformedAuthorization},
		{name: "tab after scheme", authz: []string{"Bearer\tabc"}, wantErr: ErrMalformedAuthorization},
		{name: "two headers", authz: []string{"Bearer abc", "Bearer abc"}, wantErr: ErrRepeatedAuthorization},
		{name: "cookie when named", cookie: "c.o.k", named: "at", want: "c.o.k"},
		{name: "cookie ignored when not named", cookie: "c.o.k", wantErr: ErrNoBearer},
		{name: "empty cookie", cookie: "", named: "at", wantErr: ErrNoBearer},
		{name: "header wins over cookie", authz: []string{"Bearer abc"}, cookie: "c.o.k", named: "at", want: "abc"},
		{name: "malformed header, no cookie fallback", authz: []string{"Basic YTpi"}, cookie: "c.o.k", named: "at", wantErr: ErrMalformedAuthorization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, a := range tt.authz {
				r.Header.Add("Authorization", a)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: "at", Value: tt.cookie})
			}
			got, err := BearerToken(r, tt.named)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Fatalf("BearerToken = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if !errors.Is(ErrRepeatedAuthorization, ErrMalformedAuthorization) {
		t.Fatal("ErrRepeatedAuthorization is not an ErrMalformedAuthorization")
	}
}

// FuzzBearerToken: a token is returned only with a nil error, is not
// empty, holds no space or tab, and is the end of the header it came from.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  abc", "Bearer", "Bearer ", "Basic YTpi", "Bearer a b", "Bearer a\tb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authz string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", authz)
		tok, err := BearerToken(r, "")
		switch {
		case err != nil && tok != "":
			t.Fatalf("token %q with error %v", tok, err)
		case err != nil && !errors.Is(err, ErrMalformedAuthorization):
			t.Fatalf("one header: error %v, want ErrMalformedAuthorization", err)
		case err == nil && (tok == "" || strings.ContainsAny(tok, " \t") || !strings.HasSuffix(authz, " "+tok)):
			t.Fatalf("header %q: token %q", authz, tok)
		}
	})
}

// TestStandardLibraryOnly: pkg/verifier, which every service embeds,
// imports httpx; anything httpx imports is linked into those services.
func TestStandardLibraryOnly(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") {
			t.Errorf("httpx imports %s: keep it to the standard library (see internal/httpx/prommetrics)", imp)
		}
	}
}
