// Command example runs the example API: GET /v1/me behind the jwtrevoke
// verifier. Configure it with flags or JWTREVOKE_* environment variables
// (see README, "Configuration").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/example"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

// env returns the environment variable JWTREVOKE_<name>, or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv("JWTREVOKE_" + name); ok {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv("JWTREVOKE_" + name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		fmt.Fprintf(os.Stderr, "example: JWTREVOKE_%s=%q is not a duration; using %s\n", name, v, def)
	}
	return def
}

func run() error {
	var (
		listen       = flag.String("listen", env("LISTEN", ":8080"), "address to serve on (JWTREVOKE_LISTEN)")
		natsURL      = flag.String("nats-url", env("NATS_URL", nats.DefaultURL), "NATS server URLs, comma-separated (JWTREVOKE_NATS_URL)")
		issuer       = flag.String("issuer", env("ISSUER", "http://localhost:8081"), "expected iss (JWTREVOKE_ISSUER)")
		audience     = flag.String("audience", env("AUDIENCE", "api"), "accepted aud values, comma-separated (JWTREVOKE_AUDIENCE)")
		algorithms   = flag.String("algorithms", env("ALGORITHMS", "EdDSA"), "allowed algorithms, comma-separated: EdDSA, ES256, RS256 (JWTREVOKE_ALGORITHMS)")
		jwksURL      = flag.String("jwks-url", env("JWKS_URL", "http://localhost:8081/.well-known/jwks.json"), "the issuer's JWKS (JWTREVOKE_JWKS_URL)")
		insecureJWKS = flag.Bool("insecure-jwks-http", env("INSECURE_JWKS_HTTP", "") == "true", "allow an http:// JWKS URL on a non-loopback host; never in production (JWTREVOKE_INSECURE_JWKS_HTTP)")
		maxLifetime  = flag.Duration("max-token-lifetime", envDuration("MAX_TOKEN_LIFETIME", verifier.DefaultMaxTokenLifetime), "longest access-token lifetime accepted (JWTREVOKE_MAX_TOKEN_LIFETIME)")
		maxStale     = flag.Duration("max-staleness", envDuration("MAX_STALENESS", verifier.DefaultMaxStaleness), "staleness bound before requests fail closed (JWTREVOKE_MAX_STALENESS)")
		cookie       = flag.String("cookie", env("COOKIE", ""), "also read the access token from this cookie (JWTREVOKE_COOKIE)")
	)
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := nats.Connect(*natsURL, nats.Name("jwtrevoke-example"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	srv, err := example.New(example.Config{
		Verifier: verifier.Config{
			Issuer:               *issuer,
			Audiences:            split(*audience),
			Algorithms:           split(*algorithms),
			JWKSURL:              *jwksURL,
			InsecureJWKSOverHTTP: *insecureJWKS,
			JetStream:            js,
			MaxTokenLifetime:     *maxLifetime,
			MaxStaleness:         *maxStale,
		},
		Cookie: *cookie,
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	hs, err := httpx.Listen(*listen, srv.Handler(), log)
	if err != nil {
		return err
	}
	log.Info("example service listening", "addr", hs.Addr())
	errc := make(chan error, 2)
	go func() { errc <- srv.Run(ctx) }()
	go func() { errc <- hs.Serve(ctx) }()
	var first error
	for range 2 {
		if err := <-errc; err != nil && first == nil {
			first = err
			stop()
		}
	}
	if errors.Is(first, context.Canceled) {
		return nil
	}
	return first
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
