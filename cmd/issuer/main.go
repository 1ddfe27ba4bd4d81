// Command issuer runs jwtrevoke's token service: login and session
// creation, refresh-token rotation, RFC 7009 revocation, logout, and the
// JWKS. Every flag has an environment fallback (JWTREVOKE_<NAME>); secrets
// are read from the environment or a file, never from a flag. Run with -h
// for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/issuer"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv))
}

// options are the parsed flags and secrets.
type options struct {
	listen, issuer, audience           string
	accessTTL, refreshTTL, grace       time.Duration
	leeway                             time.Duration
	keyDir, signingKID                 string
	refreshSecret                      string
	serviceCredentials                 []string
	revokerURL, revokerCredential      string
	natsURL, natsCreds, stream         string
	redisAddrs, redisMaster, redisPass string
	redisPrefix                        string
	setCookie, cookieSecure            bool
	cookieName, cookieSameSite         string
	logLevel                           string
}

func run(args []string, getenv func(string) string) int {
	o, err := parse(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "issuer: %v\n", err)
		return 1
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "issuer: -log-level: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(o, log); err != nil {
		log.Error("issuer stopped", "err", err)
		return 1
	}
	return 0
}

func parse(args []string, getenv func(string) string) (options, error) {
	var o options
	fs := flag.NewFlagSet("issuer", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: issuer [flags]\n\nEvery flag falls back to JWTREVOKE_<FLAG> (upper case, '-' as '_').\n"+
			"Secrets come from the environment or a file, never a flag: JWTREVOKE_REFRESH_SECRET, "+
			"JWTREVOKE_SERVICE_CREDENTIALS (comma-separated), JWTREVOKE_REVOKER_CREDENTIAL, JWTREVOKE_REDIS_PASSWORD.\n\n")
		fs.PrintDefaults()
	}
	env := func(name, def string) string {
		if v := getenv("JWTREVOKE_" + name); v != "" {
			return v
		}
		return def
	}
	envDur := func(name string, def time.Duration) time.Duration {
		if v := getenv("JWTREVOKE_" + name); v != "" {
			d, err := time.ParseDuration(v)
			if err == nil {
				return d
			}
		}
		return def
	}
	envBool := func(name string, def bool) bool {
		if v := getenv("JWTREVOKE_" + name); v != "" {
			b, err := strconv.ParseBool(v)
			if err == nil {
				return b
			}
		}
		return def
	}
	var refreshSecretFile, credFile, revokerCredFile string
	fs.StringVar(&o.listen, "listen", env("LISTEN", ":8081"), "listen address (JWTREVOKE_LISTEN)")
	fs.StringVar(&o.issuer, "issuer", env("ISSUER", ""), "iss of the access tokens, e.g. https://auth.example.com (JWTREVOKE_ISSUER; required)")
	fs.StringVar(&o.audience, "audience", env("AUDIENCE", ""), "aud of the access tokens, comma-separated (JWTREVOKE_AUDIENCE; required)")
	fs.DurationVar(&o.accessTTL, "access-ttl", envDur("ACCESS_TTL", issuer.DefaultAccessTTL), "access-token lifetime (JWTREVOKE_ACCESS_TTL)")
	fs.DurationVar(&o.refreshTTL, "refresh-ttl", envDur("REFRESH_TTL", issuer.DefaultRefreshTTL), "refresh-token lifetime, renewed on each rotation (JWTREVOKE_REFRESH_TTL)")
	fs.DurationVar(&o.grace, "refresh-grace", envDur("REFRESH_GRACE", issuer.DefaultGrace), "window in which a just-rotated refresh token may be retried (JWTREVOKE_REFRESH_GRACE)")
	fs.DurationVar(&o.leeway, "leeway", envDur("LEEWAY", issuer.DefaultLeeway), "clock leeway for tokens presented to logout/revoke (JWTREVOKE_LEEWAY)")
	fs.StringVar(&o.keyDir, "key-dir", env("KEY_DIR", ""), "directory of PEM PKCS#8 signing keys, kid = file name without extension (JWTREVOKE_KEY_DIR; required)")
	fs.StringVar(&o.signingKID, "signing-kid", env("SIGNING_KID", ""), "kid of the key that signs; default the first by name (JWTREVOKE_SIGNING_KID)")
	fs.StringVar(&refreshSecretFile, "refresh-secret-file", env("REFRESH_SECRET_FILE", ""), "file holding the refresh HMAC secret, >= 32 bytes (JWTREVOKE_REFRESH_SECRET_FILE; or the secret itself in JWTREVOKE_REFRESH_SECRET)")
	fs.StringVar(&credFile, "service-credentials-file", env("SERVICE_CREDENTIALS_FILE", ""), "file of service credentials for POST /v1/sessions, one per line (JWTREVOKE_SERVICE_CREDENTIALS_FILE; or comma-separated in JWTREVOKE_SERVICE_CREDENTIALS)")
	fs.StringVar(&o.revokerURL, "revoker-url", env("REVOKER_URL", "http://127.0.0.1:8082"), "revoker base URL (JWTREVOKE_REVOKER_URL)")
	fs.StringVar(&revokerCredFile, "revoker-credential-file", env("REVOKER_CREDENTIAL_FILE", ""), "file holding the credential for the revoker (JWTREVOKE_REVOKER_CREDENTIAL_FILE; or JWTREVOKE_REVOKER_CREDENTIAL)")
	fs.StringVar(&o.natsURL, "nats-url", env("NATS_URL", nats.DefaultURL), "NATS server URLs, comma-separated (JWTREVOKE_NATS_URL)")
	fs.StringVar(&o.natsCreds, "nats-creds", env("NATS_CREDS", ""), "NATS credentials file (JWTREVOKE_NATS_CREDS)")
	fs.StringVar(&o.stream, "stream", env("STREAM", ""), "revocation stream name; default the events default (JWTREVOKE_STREAM)")
	fs.StringVar(&o.redisAddrs, "redis-addrs", env("REDIS_ADDRS", "127.0.0.1:6379"), "Redis addresses, comma-separated: one server, Sentinels (with -redis-master) or Cluster nodes (JWTREVOKE_REDIS_ADDRS)")
	fs.StringVar(&o.redisMaster, "redis-master", env("REDIS_MASTER", ""), "Sentinel master name (JWTREVOKE_REDIS_MASTER)")
	fs.StringVar(&o.redisPrefix, "redis-prefix", env("REDIS_PREFIX", ""), "Redis key prefix; default jwtrevoke (JWTREVOKE_REDIS_PREFIX)")
	fs.BoolVar(&o.setCookie, "cookie", envBool("COOKIE", false), "also set the access token as an HttpOnly cookie on login and refresh (JWTREVOKE_COOKIE)")
	fs.StringVar(&o.cookieName, "cookie-name", env("COOKIE_NAME", issuer.DefaultCookieName), "cookie name (JWTREVOKE_COOKIE_NAME)")
	fs.BoolVar(&o.cookieSecure, "cookie-secure", envBool("COOKIE_SECURE", true), "Secure cookie attribute; false only for http://localhost (JWTREVOKE_COOKIE_SECURE)")
	fs.StringVar(&o.cookieSameSite, "cookie-samesite", env("COOKIE_SAMESITE", "strict"), "SameSite: strict, lax or none (JWTREVOKE_COOKIE_SAMESITE)")
	fs.StringVar(&o.logLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (JWTREVOKE_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.refreshSecret, err = secret(getenv("JWTREVOKE_REFRESH_SECRET"), refreshSecretFile); err != nil {
		return o, fmt.Errorf("refresh secret: %w", err)
	}
	if o.revokerCredential, err = secret(getenv("JWTREVOKE_REVOKER_CREDENTIAL"), revokerCredFile); err != nil {
		return o, fmt.Errorf("revoker credential: %w", err)
	}
	creds, err := secret(getenv("JWTREVOKE_SERVICE_CREDENTIALS"), credFile)
	if err != nil {
		return o, fmt.Errorf("service credentials: %w", err)
	}
	o.serviceCredentials = process.SplitList(strings.ReplaceAll(creds, "\n", ","))
	o.redisPass = getenv("JWTREVOKE_REDIS_PASSWORD")

	var missing []string
	for name, v := range map[string]string{"-issuer": o.issuer, "-audience": o.audience, "-key-dir": o.keyDir,
		"JWTREVOKE_REFRESH_SECRET or -refresh-secret-file":         o.refreshSecret,
		"JWTREVOKE_REVOKER_CREDENTIAL or -revoker-credential-file": o.revokerCredential} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return o, fmt.Errorf("missing required settings: %s", strings.Join(missing, ", "))
	}
	return o, nil
}

// secret returns the value from the environment or, if empty, the content
// of file (trailing newline trimmed).
func secret(fromEnv, file string) (string, error) {
	if fromEnv != "" {
		return fromEnv, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func sameSite(s string) (http.SameSite, error) {
	switch strings.ToLower(s) {
	case "strict":
		return http.SameSiteStrictMode, nil
	case "lax":
		return http.SameSiteLaxMode, nil
	case "none":
		return http.SameSiteNoneMode, nil
	}
	return 0, fmt.Errorf("-cookie-samesite %q: want strict, lax or none", s)
}

func serve(o options, log *slog.Logger) error {
	keys, err := issuer.LoadKeys(o.keyDir)
	if err != nil {
		return err
	}
	ss, err := sameSite(o.cookieSameSite)
	if err != nil {
		return err
	}

	// The service may start before NATS: it is not ready (and answers 503)
	// until connected.
	nc, js, err := process.NATS("jwtrevoke-issuer", o.natsURL, o.natsCreds, log)
	if err != nil {
		return err
	}
	defer nc.Close()

	rdb := process.Redis(o.redisAddrs, o.redisMaster, o.redisPass)
	defer rdb.Close()
	st, err := store.New(store.Config{Client: rdb, Prefix: o.redisPrefix, Retention: max(30*24*time.Hour, o.refreshTTL)})
	if err != nil {
		return err
	}

	app, err := issuer.New(issuer.Config{
		Issuer:             o.issuer,
		Audiences:          process.SplitList(o.audience),
		Keys:               keys,
		SigningKeyID:       o.signingKID,
		AccessTTL:          o.accessTTL,
		RefreshTTL:         o.refreshTTL,
		RefreshGrace:       o.grace,
		RefreshSecret:      []byte(o.refreshSecret),
		Store:              st,
		Revoker:            revoker.NewClient(o.revokerURL, o.revokerCredential, nil),
		JetStream:          js,
		Stream:             o.stream,
		Leeway:             o.leeway,
		ServiceCredentials: o.serviceCredentials,
		SetCookie:          o.setCookie,
		CookieName:         o.cookieName,
		InsecureCookie:     !o.cookieSecure,
		CookieSameSite:     ss,
		Logger:             log,
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
	log.Info("issuer listening", "addr", srv.Addr(), "issuer", o.issuer, "keys", len(keys))

	err = process.Run(ctx, app.Run, srv.Serve)
	log.Info("issuer stopped")
	return err
}
