// Command revoker runs jwtrevoke's revoker, the only publisher of revocation
// events: POST /v1/revocations (token, session, subject, key, scope,
// issuer), RFC 7662
// introspection at POST /oauth2/introspect, and /healthz, /readyz,
// /metrics. It may start before NATS and Redis: it becomes ready once the
// stream is ensured and both answer.
//
// Every flag has an environment fallback, JWTREVOKE_ and the flag name in
// upper case with '-' as '_' (-nats-url: JWTREVOKE_NATS_URL); a flag on the
// command line wins. Secrets come from the environment or a file, never
// from a flag (flags show in ps): JWTREVOKE_SERVICE_CREDENTIALS
// (comma-separated) or -service-credentials-file (one per line), the
// console's JWTREVOKE_CONSOLE_CREDENTIALS or -console-credentials-file (the
// operators' console at /console is on when one is set), and
// JWTREVOKE_REDIS_PASSWORD. Run with -h for the list. Exit status 1 on bad
// configuration or when serving fails; 0 after SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/internal/providers"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// options are the parsed flags and secrets.
type options struct {
	listen                            string
	natsURL, natsCreds                string
	redisAddrs, redisMaster, redisPwd string
	redisPrefix                       string
	redisRetention                    time.Duration
	credentials, consoleCredentials   []string
	consoleSession                    time.Duration
	issuer, audience, algorithms      string
	jwksURL                           string
	insecureJWKSOverHTTP              bool
	stream                            string
	replicas                          int
	maxTokenLifetime, leeway          time.Duration
	idempotencyTTL, timeout           time.Duration
	logLevel, logFormat               string
	providersFile                     string
	epochScopes                       string
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	var o options
	return process.Main("revoker", stderr, func() (string, string, error) {
		var err error
		o, err = parse(args, getenv, stderr)
		return o.logLevel, o.logFormat, err
	}, func(log *slog.Logger) error { return serve(o, log) })
}

// parse reads the flags, then the environment for every flag not given.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	var credFile, consoleFile string
	f := process.NewFlags("revoker", "Secrets come from the environment or a file, never a flag: JWTREVOKE_SERVICE_CREDENTIALS "+
		"(comma-separated) or -service-credentials-file; JWTREVOKE_REDIS_PASSWORD.", stderr)
	fs := f.Set
	f.Listen(&o.listen, ":8082")
	f.NATS(&o.natsURL, &o.natsCreds)
	f.Redis(&o.redisAddrs, &o.redisMaster, &o.redisPrefix)
	fs.DurationVar(&o.redisRetention, "redis-retention", 30*24*time.Hour, "how long subject and session records are kept; at least the longest refresh-token lifetime")
	fs.StringVar(&credFile, "service-credentials-file", "", "file of accepted service credentials, one per line (or comma-separated in JWTREVOKE_SERVICE_CREDENTIALS)")
	fs.StringVar(&consoleFile, "console-credentials-file", "", "file of the operators' console credentials, one per line (or comma-separated in JWTREVOKE_CONSOLE_CREDENTIALS); none: no console")
	fs.DurationVar(&o.consoleSession, "console-session", revoker.DefaultConsoleSession, "how long a console login lasts")
	fs.StringVar(&o.issuer, "issuer", "", "iss of the access tokens (required)")
	fs.StringVar(&o.audience, "audience", "", "accepted aud values, comma-separated (required)")
	fs.StringVar(&o.algorithms, "algorithms", verifier.EdDSA, "accepted JWS algorithms, comma-separated: EdDSA, ES256, RS256")
	fs.StringVar(&o.jwksURL, "jwks-url", "", "the issuer's JWKS URL (required)")
	fs.BoolVar(&o.insecureJWKSOverHTTP, "insecure-jwks-over-http", false, "allow an http:// JWKS URL on a non-loopback host; MUST NOT be used in production")
	fs.StringVar(&o.providersFile, "providers", "", "file of outside identity providers whose logout signals are taken (docs/providers.md)")
	f.EpochScopes(&o.epochScopes)
	fs.StringVar(&o.stream, "stream", events.DefaultStreamName, "revocation stream name")
	fs.IntVar(&o.replicas, "stream-replicas", 1, "stream replicas (1..5; 3 in production)")
	fs.DurationVar(&o.maxTokenLifetime, "max-token-lifetime", verifier.DefaultMaxTokenLifetime, "longest access-token lifetime; sizes the stream retention; the same as every verifier's")
	fs.DurationVar(&o.leeway, "leeway", verifier.DefaultLeeway, "verifiers' clock-skew leeway")
	// Accepted so that deployments which still set them keep starting.
	f.Retired("max-staleness", "introspection reads the Redis records, not the stream", false)
	f.Retired("stale-fallback", "introspection reads the Redis records, not the stream", true)
	fs.DurationVar(&o.idempotencyTTL, "idempotency-ttl", revoker.DefaultIdempotencyTTL, "how long an Idempotency-Key is remembered")
	fs.DurationVar(&o.timeout, "timeout", revoker.DefaultTimeout, "bound on the Redis and NATS work of one request (then 503)")
	f.Logging(&o.logLevel, &o.logFormat, "info", "json")
	if err := f.Parse(args, getenv); err != nil {
		return o, err
	}

	var err error
	if o.credentials, err = secretList(getenv, "JWTREVOKE_SERVICE_CREDENTIALS", credFile); err != nil {
		return o, fmt.Errorf("service credentials: %w", err)
	}
	if o.consoleCredentials, err = secretList(getenv, "JWTREVOKE_CONSOLE_CREDENTIALS", consoleFile); err != nil {
		return o, fmt.Errorf("console credentials: %w", err)
	}
	o.redisPwd = getenv("JWTREVOKE_REDIS_PASSWORD")

	var missing []string
	for _, m := range []struct{ name, v string }{
		{"-issuer", o.issuer}, {"-audience", o.audience}, {"-jwks-url", o.jwksURL},
		{"JWTREVOKE_SERVICE_CREDENTIALS or -service-credentials-file", strings.Join(o.credentials, ",")},
	} {
		if m.v == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return o, fmt.Errorf("missing required settings: %s", strings.Join(missing, ", "))
	}
	return o, nil
}

// secretList reads a list of secrets from the environment variable env
// (comma-separated) or, when it is empty, from file (one per line).
func secretList(getenv func(string) string, env, file string) ([]string, error) {
	v := getenv(env)
	if v == "" && file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		v = string(b)
	}
	return process.SplitList(strings.ReplaceAll(v, "\n", ",")), nil
}

func serve(o options, log *slog.Logger) error {
	// A bad providers file stops the start before anything is connected.
	provs, err := signalProviders(o, log)
	if err != nil {
		return err
	}
	// The service may start before NATS: it is not ready (and answers 503)
	// until connected.
	nc, js, err := process.NATS("jwtrevoke-revoker", o.natsURL, o.natsCreds, log)
	if err != nil {
		return err
	}
	defer nc.Close()

	rdb := process.Redis(o.redisAddrs, o.redisMaster, o.redisPwd)
	defer rdb.Close()
	st, err := store.New(store.Config{Client: rdb, Prefix: o.redisPrefix, Retention: o.redisRetention})
	if err != nil {
		return err
	}

	app, err := revoker.New(revoker.Config{
		JetStream:            js,
		Store:                st,
		Credentials:          o.credentials,
		ConsoleCredentials:   o.consoleCredentials,
		ConsoleSession:       o.consoleSession,
		Stream:               o.stream,
		Replicas:             o.replicas,
		MaxTokenLifetime:     o.maxTokenLifetime,
		Leeway:               o.leeway,
		EpochScopes:          process.SplitList(o.epochScopes),
		Issuer:               o.issuer,
		Audiences:            process.SplitList(o.audience),
		Algorithms:           process.SplitList(o.algorithms),
		JWKSURL:              o.jwksURL,
		InsecureJWKSOverHTTP: o.insecureJWKSOverHTTP,
		IdempotencyTTL:       o.idempotencyTTL,
		Timeout:              o.timeout,
		Providers:            provs,
		Logger:               log,
	})
	if err != nil {
		return err
	}
	defer app.Close()
	srv, err := httpx.Listen(o.listen, app.Handler(), log)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("revoker listening", "addr", srv.Addr(), "nats", process.RedactURLs(o.natsURL), "stream", o.stream,
		"replicas", o.replicas, "issuer", o.issuer)

	err = process.Run(ctx, app.Run, srv.Serve)
	log.Info("revoker stopped")
	return err
}

// signalProviders reads the providers file, if any, and returns its
// providers: the revoker takes the logout signals (back-channel logout
// tokens, Shared Signals SETs) of those that send any, and knows the
// issuers of all for issuer revocations.
func signalProviders(o options, log *slog.Logger) ([]revoker.Provider, error) {
	if o.providersFile == "" {
		return nil, nil
	}
	ps, err := providers.Load(o.providersFile)
	if err != nil {
		return nil, err
	}
	var out []revoker.Provider
	for _, p := range ps {
		if p.BackchannelLogout == nil && p.SSF == nil {
			out = append(out, revoker.Provider{Name: p.Name, Issuer: p.Issuer}) // no signals: its issuer only
			continue
		}
		keys, err := p.Keys(providers.KeyOptions{InsecureJWKSOverHTTP: o.insecureJWKSOverHTTP, Logger: log})
		if err != nil {
			return nil, err
		}
		rp := revoker.Provider{Name: p.Name, Issuer: p.Issuer, Keys: keys}
		if rp.Logout, err = p.LogoutChecker(keys); err != nil {
			return nil, err
		}
		if rp.Logout != nil {
			rp.LogoutBySubject = p.BackchannelLogout.BySubject()
		}
		if rp.Events, rp.EventsCredentials, err = p.SETChecker(keys); err != nil {
			return nil, err
		}
		if u, cred, every, ok, err := p.Poll(); err != nil {
			return nil, err
		} else if ok {
			rp.Poll = &revoker.Poll{URL: u, Credential: cred, Interval: every, InsecureHTTP: o.insecureJWKSOverHTTP}
		}
		out = append(out, rp)
		var paths []string
		if rp.Logout != nil {
			paths = append(paths, "/v1/providers/"+p.Name+"/backchannel-logout")
		}
		if rp.EventsCredentials != nil {
			paths = append(paths, "/v1/providers/"+p.Name+"/events")
		}
		if rp.Poll != nil {
			paths = append(paths, "polls "+rp.Poll.URL)
		}
		log.Info("revoker: taking the provider's logout signals", "provider", p.Name, "issuer", p.Issuer, "paths", paths)
	}
	return out, nil
}
