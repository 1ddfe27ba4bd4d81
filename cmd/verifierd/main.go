// Command verifierd is jwtrevoke's verifier as a local authorizer, for
// services in any language behind a proxy: nginx auth_request, Traefik
// forwardAuth, Envoy ext_authz (HTTP or gRPC) and the Gateway API
// ExternalAuth filter ask it whether a request's token may pass
// (docs/gateways.md). It embeds pkg/verifier as a Go service does: it
// replays the revocation stream before it is ready, follows it, fails
// closed when stale, and decides every request locally.
//
// HTTP (-listen, default :8083; "unix:/path" for a Unix socket): any method
// on /v1/check and any path below it answers 200 with the identity
// headers, 401 with WWW-Authenticate or 503 with Retry-After, never
// another status; and /healthz, /readyz, /metrics. gRPC (-grpc-listen, off
// by default): envoy.service.auth.v3.Authorization/Check.
//
// Every flag has an environment fallback, JWTREVOKE_ and the flag name in
// upper case with '-' as '_'; a flag on the command line wins. Run with -h
// for the list. Exit status 1 on bad configuration or when serving fails;
// 0 after SIGINT or SIGTERM.
package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/jwtrevoke/jwtrevoke/internal/authz"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx/prommetrics"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stderr))
}

// options are the parsed flags.
type options struct {
	listen, grpcListen  string
	natsURL, natsCreds  string
	verifier            process.VerifierOptions
	cookie, realm       string
	headers             authz.Headers
	logLevel, logFormat string
}

func run(args []string, getenv func(string) string, stderr io.Writer) int {
	var o options
	return process.Main("verifierd", stderr, func() (string, string, error) {
		var err error
		o, err = parse(args, getenv, stderr)
		return o.logLevel, o.logFormat, err
	}, func(log *slog.Logger) error {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serve(ctx, o, log, nil)
	})
}

// noHeader is the value of a -header-* flag that leaves the header out.
const noHeader = "none"

// parse reads the flags; a flag not given falls back to its environment
// variable JWTREVOKE_<NAME>.
func parse(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	f := process.NewFlags("verifierd", "", stderr)
	fs := f.Set
	f.Listen(&o.listen, ":8083")
	fs.StringVar(&o.grpcListen, "grpc-listen", "", `gRPC listen address of Envoy's ext_authz (e.g. :9191 or unix:/path); empty: no gRPC`)
	f.NATS(&o.natsURL, &o.natsCreds)
	f.Verifier(&o.verifier, process.VerifierDefaults{})
	fs.StringVar(&o.cookie, "cookie", "", "also read the access token from this cookie")
	fs.StringVar(&o.realm, "realm", "jwtrevoke", "realm of WWW-Authenticate")
	def := authz.DefaultHeaders()
	for _, h := range []struct {
		p          *string
		name, what string
		def        string
	}{
		{&o.headers.Subject, "header-subject", "sub", def.Subject},
		{&o.headers.Session, "header-session", "the session id", def.Session},
		{&o.headers.TokenID, "header-token-id", "the token id", def.TokenID},
		{&o.headers.Issuer, "header-issuer", "iss", def.Issuer},
		{&o.headers.Claims, "header-claims", "every claim, as base64url JSON", def.Claims},
	} {
		fs.StringVar(h.p, h.name, h.def, "header carrying "+h.what+" to the upstream; "+noHeader+": leave it out")
	}
	f.Logging(&o.logLevel, &o.logFormat, "info", "json")
	if err := f.Parse(args, getenv); err != nil {
		return o, err
	}
	for _, p := range []*string{&o.headers.Subject, &o.headers.Session, &o.headers.TokenID, &o.headers.Issuer, &o.headers.Claims} {
		if *p == noHeader {
			*p = ""
		}
	}
	return o, o.verifier.Missing()
}

// serve runs verifierd until ctx ends. listening, if set, is called with
// the HTTP and gRPC addresses once both listen (tests).
func serve(ctx context.Context, o options, log *slog.Logger, listening func(http, grpc string)) error {
	// A bad providers file stops the start before anything is connected.
	vc, err := o.verifier.Config("verifierd", log)
	if err != nil {
		return err
	}
	mp, metrics, err := prommetrics.New()
	if err != nil {
		return err
	}
	nc, js, err := process.NATS("jwtrevoke-verifierd", o.natsURL, o.natsCreds, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	vc.JetStream, vc.MeterProvider, vc.Logger = js, mp, log
	v, err := verifier.New(vc)
	if err != nil {
		return err
	}
	defer v.Close()
	a, err := authz.New(authz.Config{Verifier: v, Cookie: o.cookie, Realm: o.realm, Headers: o.headers, Logger: log})
	if err != nil {
		return err
	}
	mux := httpx.NewMux()
	httpx.Health(mux, process.VerifierReady(v, js), log)
	mux.Handle("GET", "/metrics", metrics)
	hs, err := httpx.ListenBare(o.listen, a.Handler(mux), log)
	if err != nil {
		return err
	}
	tasks := []func(context.Context) error{v.Run, hs.Serve}
	addrs := []any{"addr", hs.Addr()}
	if o.grpcListen != "" {
		ln, err := httpx.Listener(o.grpcListen)
		if err != nil {
			return err
		}
		gs := grpc.NewServer(authz.ServerOptions()...)
		a.Register(gs)
		// grpc.health.v1 for Envoy's health checks: SERVING while the
		// verifier can decide.
		hs := health.NewServer()
		healthpb.RegisterHealthServer(gs, hs)
		ready := process.VerifierReady(v, js)
		tasks = append(tasks, serveGRPC(gs, ln), func(ctx context.Context) error {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				st := healthpb.HealthCheckResponse_SERVING
				if ready(ctx) != nil {
					st = healthpb.HealthCheckResponse_NOT_SERVING
				}
				hs.SetServingStatus("", st)
				hs.SetServingStatus(authv3.Authorization_ServiceDesc.ServiceName, st)
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		})
		addrs = append(addrs, "grpc", ln.Addr().String())
	}
	log.Info("verifierd listening", append(addrs, "identity_headers", a.IdentityHeaders())...)
	if listening != nil {
		grpcAddr := ""
		if len(addrs) > 2 {
			grpcAddr = addrs[3].(string)
		}
		listening(hs.Addr(), grpcAddr)
	}
	err = process.Run(ctx, tasks...)
	log.Info("verifierd stopped")
	return err
}

// serveGRPC serves gs on ln until ctx ends, then stops it gracefully.
func serveGRPC(gs *grpc.Server, ln net.Listener) func(context.Context) error {
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- gs.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			gs.GracefulStop()
			return nil
		}
	}
}
