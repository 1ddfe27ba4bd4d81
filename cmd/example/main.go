// Command example runs the example API: GET /v1/me behind the jwtrevoke
// verifier. Configure it with flags or JWTREVOKE_* environment variables
// (see README, "Configuration"): every flag falls back to JWTREVOKE_<FLAG>
// (upper case, '-' as '_'), and a flag on the command line wins. Run with
// -h for the list.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/example"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// options are the parsed flags.
type options struct {
	listen, natsURL, natsCreds string
	verifier                   process.VerifierOptions
	cookie                     string
	logApplied                 bool
	logLevel, logFormat        string
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	var o options
	return process.Main("example", stderr, func() (string, string, error) {
		var err error
		o, err = parse(args, getenv, stderr)
		return o.logLevel, o.logFormat, err
	}, func(log *slog.Logger) error { return serve(o, log) })
}

// parse reads the flags; a flag not given falls back to its environment
// variable JWTREVOKE_<NAME>.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	f := process.NewFlags("example", "", stderr)
	fs := f.Set
	f.Listen(&o.listen, ":8080")
	f.NATS(&o.natsURL, &o.natsCreds)
	f.Verifier(&o.verifier, process.VerifierDefaults{Issuer: "http://localhost:8081", Audience: "api",
		JWKSURL: "http://localhost:8081/.well-known/jwks.json"})
	f.Deprecated("insecure-jwks-http", "insecure-jwks-over-http")
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
	vc, err := o.verifier.Config("example", log)
	if err != nil {
		return err
	}
	nc, js, err := process.NATS("jwtrevoke-example", o.natsURL, o.natsCreds, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	vc.JetStream = js
	if o.logApplied {
		vc.OnApplied = appliedLogger(log)
	}
	srv, err := example.New(example.Config{
		Verifier: vc,
		Cookie:   o.cookie,
		Logger:   log,
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
