// Command example runs the example API: GET /v1/me behind the jwtrevoke
// verifier. Configure it with flags or JWTREVOKE_* environment variables
// (see README, "Configuration"): every flag falls back to JWTREVOKE_<FLAG>
// (upper case, '-' as '_'), and a flag on the command line wins. Run with
// -h for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/example"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/internal/providers"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// options are the parsed flags.
type options struct {
	listen, natsURL, natsCreds string
	issuer, audience           string
	algorithms, jwksURL        string
	insecureJWKS               bool
	maxLifetime, maxStale      time.Duration
	cookie                     string
	logApplied                 bool
	logLevel, logFormat        string
	providersFile              string
	epochScopes                string
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "example:", err)
		return 1
	}
	log, err := process.Logger(o.logLevel, o.logFormat, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "example:", err)
		return 1
	}
	if err := serve(o, log); err != nil {
		log.Error("example service stopped", "err", err)
		return 1
	}
	return 0
}

// parse reads the flags; a flag not given falls back to its environment
// variable JWTREVOKE_<NAME>.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	f := process.NewFlags("example", "", stderr)
	fs := f.Set
	f.Listen(&o.listen, ":8080")
	f.NATS(&o.natsURL, &o.natsCreds)
	fs.StringVar(&o.issuer, "issuer", "http://localhost:8081", "expected iss")
	fs.StringVar(&o.audience, "audience", "api", "accepted aud values, comma-separated")
	fs.StringVar(&o.algorithms, "algorithms", verifier.EdDSA, "allowed algorithms, comma-separated: EdDSA, ES256, RS256")
	fs.StringVar(&o.jwksURL, "jwks-url", "http://localhost:8081/.well-known/jwks.json", "the issuer's JWKS")
	fs.BoolVar(&o.insecureJWKS, "insecure-jwks-over-http", false, "allow an http:// JWKS URL on a non-loopback host; MUST NOT be used in production")
	f.Deprecated("insecure-jwks-http", "insecure-jwks-over-http")
	fs.StringVar(&o.providersFile, "providers", "", "file of outside identity providers whose tokens are trusted too (docs/providers.md)")
	f.EpochScopes(&o.epochScopes)
	fs.DurationVar(&o.maxLifetime, "max-token-lifetime", verifier.DefaultMaxTokenLifetime, "longest access-token lifetime accepted")
	fs.DurationVar(&o.maxStale, "max-staleness", verifier.DefaultMaxStaleness, "staleness bound before requests fail closed")
	fs.StringVar(&o.cookie, "cookie", "", "also read the access token from this cookie")
	fs.BoolVar(&o.logApplied, "log-applied", false, "log one line per revocation event applied, with its id and applied_unix_ns; for propagation measurements")
	f.Logging(&o.logLevel, &o.logFormat, "info", "json")
	err := f.Parse(args, getenv)
	return o, err
}

// appliedLogger returns a verifier.Config.OnApplied that writes one line per
// applied event: {"msg":"revocation applied","id":...,"applied_unix_ns":...}
// (bench/e2e reads them; the instant is the verifier's own clock).
func appliedLogger(log *slog.Logger) func(events.Event, time.Time) {
	return func(e events.Event, applied time.Time) {
		log.LogAttrs(context.Background(), slog.LevelInfo, "revocation applied",
			slog.String("id", e.ID), slog.Int64("applied_unix_ns", applied.UnixNano()))
	}
}

func serve(o options, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A bad providers file stops the start before anything is connected.
	var trusted []verifier.Provider
	if o.providersFile != "" {
		ps, err := providers.Load(o.providersFile)
		if err != nil {
			return err
		}
		if trusted, err = providers.Trusts(ps, providers.KeyOptions{InsecureJWKSOverHTTP: o.insecureJWKS, Logger: log}); err != nil {
			return err
		}
	}
	nc, js, err := process.NATS("jwtrevoke-example", o.natsURL, o.natsCreds, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	var onApplied func(events.Event, time.Time)
	if o.logApplied {
		onApplied = appliedLogger(log)
	}
	keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: o.jwksURL, InsecureAllowHTTP: o.insecureJWKS,
		Logger: log.With("component", "jwks")})
	if err != nil {
		return err
	}
	srv, err := example.New(example.Config{
		Verifier: verifier.Config{
			OnApplied:        onApplied,
			Issuer:           o.issuer,
			Audiences:        process.SplitList(o.audience),
			Algorithms:       process.SplitList(o.algorithms),
			Keys:             keys,
			Providers:        trusted,
			JetStream:        js,
			MaxTokenLifetime: o.maxLifetime,
			MaxStaleness:     o.maxStale,
			EpochScopes:      process.SplitList(o.epochScopes),
		},
		Cookie: o.cookie,
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	hs, err := httpx.Listen(o.listen, srv.Handler(), log)
	if err != nil {
		return err
	}
	log.Info("example service listening", "addr", hs.Addr())
	err = process.Run(ctx, srv.Run, hs.Serve)
	log.Info("example service stopped")
	return err
}
