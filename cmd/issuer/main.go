// Command issuer runs jwtrevoke's token service: login and session
// creation, refresh-token rotation, RFC 7009 revocation, logout, and the
// JWKS. Every flag has an environment fallback (JWTREVOKE_<NAME>); secrets
// are read from the environment or a file, never from a flag. Run with -h
// for the list.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

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
	epochScopes                        string
	keyDir, signingKID                 string
	refreshSecret                      string
	serviceCredentials                 []string
	revokerURL, revokerCredential      string
	redisAddrs, redisMaster, redisPass string
	redisPrefix                        string
	setCookie, cookieSecure            bool
	cookieName, cookieSameSite         string
	logLevel, logFormat                string
}

func run(args []string, getenv func(string) string) int {
	var o options
	return process.Main("issuer", os.Stderr, func() (string, string, error) {
		var err error
		o, err = parse(args, getenv)
		return o.logLevel, o.logFormat, err
	}, func(log *slog.Logger) error { return serve(o, log) })
}

func parse(args []string, getenv func(string) string) (options, error) {
	var o options
	f := process.NewFlags("issuer", "Secrets come from the environment or a file, never a flag: JWTREVOKE_REFRESH_SECRET, "+
		"JWTREVOKE_SERVICE_CREDENTIALS (comma-separated), JWTREVOKE_REVOKER_CREDENTIAL, JWTREVOKE_REDIS_PASSWORD.", os.Stderr)
	fs := f.Set
	var refreshSecretFile, credFile, revokerCredFile string
	f.Listen(&o.listen, ":8081")
	fs.StringVar(&o.issuer, "issuer", "", "iss of the access tokens, e.g. https://auth.example.com (required)")
	fs.StringVar(&o.audience, "audience", "", "aud of the access tokens, comma-separated (required)")
	fs.DurationVar(&o.accessTTL, "access-ttl", issuer.DefaultAccessTTL, "access-token lifetime")
	fs.DurationVar(&o.refreshTTL, "refresh-ttl", issuer.DefaultRefreshTTL, "refresh-token lifetime, renewed on each rotation")
	fs.DurationVar(&o.grace, "refresh-grace", issuer.DefaultGrace, "window in which a just-rotated refresh token may be retried")
	fs.DurationVar(&o.leeway, "leeway", issuer.DefaultLeeway, "clock leeway for tokens presented to logout/revoke")
	f.EpochScopes(&o.epochScopes)
	fs.StringVar(&o.keyDir, "key-dir", "", "directory of PEM PKCS#8 signing keys, kid = file name without extension (required)")
	fs.StringVar(&o.signingKID, "signing-kid", "", "kid of the key that signs; default the first by name")
	fs.StringVar(&refreshSecretFile, "refresh-secret-file", "", "file holding the refresh HMAC secret, >= 32 bytes (or the secret itself in JWTREVOKE_REFRESH_SECRET)")
	fs.StringVar(&credFile, "service-credentials-file", "", "file of service credentials for POST /v1/sessions, one per line (or comma-separated in JWTREVOKE_SERVICE_CREDENTIALS)")
	fs.StringVar(&o.revokerURL, "revoker-url", "http://127.0.0.1:8082", "revoker base URL")
	fs.StringVar(&revokerCredFile, "revoker-credential-file", "", "file holding the credential for the revoker (or JWTREVOKE_REVOKER_CREDENTIAL)")
	// Accepted so that deployments which still set them keep starting.
	for _, name := range []string{"nats-url", "nats-creds", "stream"} {
		f.Retired(name, "the issuer reads revocations from Redis and no longer connects to NATS", false)
	}
	f.Redis(&o.redisAddrs, &o.redisMaster, &o.redisPrefix)
	fs.BoolVar(&o.setCookie, "cookie", false, "also set the access token as an HttpOnly cookie on login and refresh")
	fs.StringVar(&o.cookieName, "cookie-name", issuer.DefaultCookieName, "cookie name")
	fs.BoolVar(&o.cookieSecure, "cookie-secure", true, "Secure cookie attribute; false only for http://localhost")
	fs.StringVar(&o.cookieSameSite, "cookie-samesite", "strict", "SameSite: strict, lax or none")
	f.Logging(&o.logLevel, &o.logFormat, "info", "json")
	if err := f.Parse(args, getenv); err != nil {
		return o, err
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
		Leeway:             o.leeway,
		EpochScopes:        process.SplitList(o.epochScopes),
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
