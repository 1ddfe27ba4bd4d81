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
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jwtrevoke/jwtrevoke/internal/example"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// options are the parsed flags.
type options struct {
	listen, natsURL       string
	issuer, audience      string
	algorithms, jwksURL   string
	insecureJWKS          bool
	maxLifetime, maxStale time.Duration
	cookie                string
	logApplied            bool
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	o, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = serve(o, slog.New(slog.NewJSONHandler(stderr, nil)))
	}
	if err != nil {
		fmt.Fprintln(stderr, "example:", err)
		return 1
	}
	return 0
}

// parse reads the flags; each flag's default is its environment variable
// JWTREVOKE_<NAME> when set, so a flag given on the command line wins.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var (
		o    options
		errs []error
	)
	env := func(name, def string) string {
		if v := getenv("JWTREVOKE_" + name); v != "" {
			return v
		}
		return def
	}
	envDuration := func(name string, def time.Duration) time.Duration {
		v := getenv("JWTREVOKE_" + name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("JWTREVOKE_%s=%q: %w", name, v, err))
		}
		return d
	}
	envBool := func(name string) bool {
		v := getenv("JWTREVOKE_" + name)
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("JWTREVOKE_%s=%q: %w", name, v, err))
		}
		return b
	}
	fs := flag.NewFlagSet("example", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", env("LISTEN", ":8080"), "address to serve on (JWTREVOKE_LISTEN)")
	fs.StringVar(&o.natsURL, "nats-url", env("NATS_URL", nats.DefaultURL), "NATS server URLs, comma-separated (JWTREVOKE_NATS_URL)")
	fs.StringVar(&o.issuer, "issuer", env("ISSUER", "http://localhost:8081"), "expected iss (JWTREVOKE_ISSUER)")
	fs.StringVar(&o.audience, "audience", env("AUDIENCE", "api"), "accepted aud values, comma-separated (JWTREVOKE_AUDIENCE)")
	fs.StringVar(&o.algorithms, "algorithms", env("ALGORITHMS", "EdDSA"), "allowed algorithms, comma-separated: EdDSA, ES256, RS256 (JWTREVOKE_ALGORITHMS)")
	fs.StringVar(&o.jwksURL, "jwks-url", env("JWKS_URL", "http://localhost:8081/.well-known/jwks.json"), "the issuer's JWKS (JWTREVOKE_JWKS_URL)")
	fs.BoolVar(&o.insecureJWKS, "insecure-jwks-http", envBool("INSECURE_JWKS_HTTP"), "allow an http:// JWKS URL on a non-loopback host; never in production (JWTREVOKE_INSECURE_JWKS_HTTP)")
	fs.DurationVar(&o.maxLifetime, "max-token-lifetime", envDuration("MAX_TOKEN_LIFETIME", verifier.DefaultMaxTokenLifetime), "longest access-token lifetime accepted (JWTREVOKE_MAX_TOKEN_LIFETIME)")
	fs.DurationVar(&o.maxStale, "max-staleness", envDuration("MAX_STALENESS", verifier.DefaultMaxStaleness), "staleness bound before requests fail closed (JWTREVOKE_MAX_STALENESS)")
	fs.StringVar(&o.cookie, "cookie", env("COOKIE", ""), "also read the access token from this cookie (JWTREVOKE_COOKIE)")
	fs.BoolVar(&o.logApplied, "log-applied", envBool("LOG_APPLIED"), "log one line per revocation event applied, with its id and applied_unix_ns; for propagation measurements (JWTREVOKE_LOG_APPLIED)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return o, errors.Join(errs...)
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

	nc, js, err := process.NATS("jwtrevoke-example", o.natsURL, "", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	var onApplied func(events.Event, time.Time)
	if o.logApplied {
		onApplied = appliedLogger(log)
	}
	srv, err := example.New(example.Config{
		Verifier: verifier.Config{
			OnApplied:            onApplied,
			Issuer:               o.issuer,
			Audiences:            process.SplitList(o.audience),
			Algorithms:           process.SplitList(o.algorithms),
			JWKSURL:              o.jwksURL,
			InsecureJWKSOverHTTP: o.insecureJWKS,
			JetStream:            js,
			MaxTokenLifetime:     o.maxLifetime,
			MaxStaleness:         o.maxStale,
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
