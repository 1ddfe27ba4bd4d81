package process

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/providers"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// VerifierOptions are the settings of a binary that embeds a verifier (the
// example service, verifierd), read by [Flags.Verifier] under the same
// names everywhere.
type VerifierOptions struct {
	Issuer, Audience, Algorithms, JWKSURL string
	InsecureJWKSOverHTTP                  bool
	ProvidersFile, EpochScopes            string
	MaxTokenLifetime, MaxStaleness        time.Duration
}

// VerifierDefaults are a binary's defaults of the own issuer's settings;
// an empty one makes its flag required ([VerifierOptions.Missing]).
type VerifierDefaults struct{ Issuer, Audience, JWKSURL string }

// Verifier defines the verifier's flags: -issuer, -audience, -algorithms,
// -jwks-url, -insecure-jwks-over-http, -providers, -epoch-scopes,
// -max-token-lifetime and -max-staleness.
func (f *Flags) Verifier(o *VerifierOptions, def VerifierDefaults) {
	fs := f.Set
	req := func(d string) string {
		if d == "" {
			return " (required)"
		}
		return ""
	}
	fs.StringVar(&o.Issuer, "issuer", def.Issuer, "expected iss"+req(def.Issuer))
	fs.StringVar(&o.Audience, "audience", def.Audience, "accepted aud values, comma-separated"+req(def.Audience))
	fs.StringVar(&o.Algorithms, "algorithms", verifier.EdDSA, "allowed algorithms, comma-separated: EdDSA, ES256, RS256")
	fs.StringVar(&o.JWKSURL, "jwks-url", def.JWKSURL, "the issuer's JWKS"+req(def.JWKSURL))
	fs.BoolVar(&o.InsecureJWKSOverHTTP, "insecure-jwks-over-http", false, "allow an http:// JWKS URL on a non-loopback host; MUST NOT be used in production")
	fs.StringVar(&o.ProvidersFile, "providers", "", "file of outside identity providers whose tokens are trusted too (docs/providers.md)")
	f.EpochScopes(&o.EpochScopes)
	fs.DurationVar(&o.MaxTokenLifetime, "max-token-lifetime", verifier.DefaultMaxTokenLifetime, "longest access-token lifetime accepted")
	fs.DurationVar(&o.MaxStaleness, "max-staleness", verifier.DefaultMaxStaleness, "staleness bound before requests fail closed")
}

// Missing returns an error naming the required settings not given, or nil.
func (o VerifierOptions) Missing() error {
	var missing []string
	for _, m := range []struct{ name, v string }{{"-issuer", o.Issuer}, {"-audience", o.Audience}, {"-jwks-url", o.JWKSURL}} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required settings: %s", strings.Join(missing, ", "))
	}
	return nil
}

// Config builds the verifier's configuration but its JetStream: the own
// issuer's JWKS and the providers file's issuers, read and checked here, so
// that a bad file stops the start before anything is connected. service
// names the binary in the verifier's announcements, with this build's
// version (Version).
func (o VerifierOptions) Config(service string, log *slog.Logger) (verifier.Config, error) {
	var trusted []verifier.Provider
	if o.ProvidersFile != "" {
		ps, err := providers.Load(o.ProvidersFile)
		if err != nil {
			return verifier.Config{}, err
		}
		if trusted, err = providers.Trusts(ps, providers.KeyOptions{InsecureJWKSOverHTTP: o.InsecureJWKSOverHTTP, Logger: log}); err != nil {
			return verifier.Config{}, err
		}
	}
	keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: o.JWKSURL, InsecureAllowHTTP: o.InsecureJWKSOverHTTP,
		Logger: log.With("component", "jwks")})
	if err != nil {
		return verifier.Config{}, err
	}
	return verifier.Config{
		Issuer:           o.Issuer,
		Audiences:        SplitList(o.Audience),
		Algorithms:       SplitList(o.Algorithms),
		Keys:             keys,
		Providers:        trusted,
		MaxTokenLifetime: o.MaxTokenLifetime,
		MaxStaleness:     o.MaxStaleness,
		EpochScopes:      SplitList(o.EpochScopes),
		Service:          service,
		ServiceVersion:   Version(),
	}, nil
}

// Version is this build's version: the main module's, or its VCS revision
// (12 hex digits, "+dirty" when modified) for a build from a checkout;
// "devel" when neither is known.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if len(rev) >= 12 {
		return rev[:12] + dirty
	}
	return "devel"
}

// VerifierReady is the /readyz check of a binary that embeds v, fed by js:
// nil while v can decide; otherwise an httpx.NotReady with a public reason
// ("nats disconnected" when that is why), the detail left to logs.
func VerifierReady(v *verifier.Verifier, js jetstream.JetStream) func(context.Context) error {
	return func(context.Context) error {
		h := v.Health()
		reason := h.Reason()
		if reason == "" {
			return nil
		}
		if js != nil && h.KeysFetched {
			if st := js.Conn().Status(); st != nats.CONNECTED {
				reason = "nats disconnected"
			}
		}
		return httpx.NotReadyBecause(reason, fmt.Errorf("verifier cannot decide: %+v", h))
	}
}
