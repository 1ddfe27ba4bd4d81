// Command jwtrevoke-dev runs the whole jwtrevoke system in one process for
// local development (`make run`): embedded NATS with JetStream, an
// in-process Redis, the issuer (:8081), the revoker (:8082), the example
// service (:8080) and verifierd (:8083), with fixed demo values. It prints what to try, and stops
// cleanly on Ctrl-C. Never use it in production.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/devmode"
	"github.com/jwtrevoke/jwtrevoke/internal/process"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	var (
		cfg                     devmode.Config
		examples, level, format string
	)
	f := process.NewFlags("jwtrevoke-dev", "Dev mode: embedded NATS, in-process Redis, issuer, revoker, example service and verifierd with fixed demo values. Never in production.", stderr)
	f.Set.StringVar(&cfg.IssuerAddr, "issuer-listen", ":8081", "the issuer's HTTP listen address")
	f.Set.StringVar(&cfg.RevokerAddr, "revoker-listen", ":8082", "the revoker's HTTP listen address")
	f.Set.StringVar(&cfg.AuthorizerAddr, "verifierd-listen", ":8083", "verifierd's HTTP listen address: the local authorizer for proxies (GET /v1/check)")
	f.Set.StringVar(&examples, "example-listen", ":8080", "the example services' listen addresses, comma-separated: one replica each")
	f.Set.StringVar(&cfg.RedisAddr, "redis-addrs", "", "an external Redis to use instead of the in-process one")
	f.Set.StringVar(&cfg.DataDir, "data-dir", "", "JetStream's directory; empty means a new temporary one, removed at exit")
	f.Set.DurationVar(&cfg.AccessTTL, "access-ttl", 5*time.Minute, "access-token lifetime")
	f.Logging(&level, &format, "warn", "text")
	if err := f.Parse(args, getenv); errors.Is(err, flag.ErrHelp) {
		return 0
	} else if err != nil {
		fmt.Fprintln(stderr, "jwtrevoke-dev:", err)
		return 1
	}
	log, err := process.Logger(level, format, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "jwtrevoke-dev:", err)
		return 1
	}
	cfg.ExampleAddrs = process.SplitList(examples)
	cfg.Logger = log

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sys, err := devmode.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "jwtrevoke-dev:", err)
		return 1
	}
	fmt.Fprint(stdout, walkthrough(sys))
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nshutting down...")
	sys.Close()
	if err := sys.Err(); err != nil {
		fmt.Fprintln(stderr, "jwtrevoke-dev:", err)
		return 1
	}
	return 0
}

func walkthrough(s *devmode.System) string {
	return fmt.Sprintf(`
jwtrevoke dev mode is running (Ctrl-C stops it)

  issuer   %[1]s   (users alice, bob; password %[4]q)
  revoker  %[2]s   (service credential %[5]q)
  console  %[2]s/console   (the operators' page; credential %[9]q)
  example  %[3]s   (GET /v1/me)
  verifierd %[8]s  (any method on /v1/check: the authorizer a proxy asks)
  nats     %[6]s   (embedded, JetStream)
  redis    %[7]s   (in-process)

Try it (needs curl and jq):

  # 1. log in as alice and keep the tokens
  TOKENS=$(curl -s -X POST %[1]s/v1/login -H 'Content-Type: application/json' \
      -d '{"username":"alice","password":"demo"}')
  AT=$(echo "$TOKENS" | jq -r .access_token); RT=$(echo "$TOKENS" | jq -r .refresh_token)

  # 2. call the example service: 200 with alice's claims
  curl -s %[3]s/v1/me -H "Authorization: Bearer $AT"

  # 3. log out (revokes the session on every replica within milliseconds)
  curl -s -o /dev/null -w '%%{http_code}\n' -X POST %[1]s/v1/logout -H "Authorization: Bearer $AT"

  # 4. the same token now gets 401, and the header says why
  curl -si %[3]s/v1/me -H "Authorization: Bearer $AT" | grep -i -e '^HTTP' -e www-authenticate

  # 5. the refresh token of that session is dead too
  curl -s -X POST %[1]s/oauth2/token -d grant_type=refresh_token -d "refresh_token=$RT"

  # 6. log in again, then log out everywhere (every session of alice)
  AT=$(curl -s -X POST %[1]s/v1/login -H 'Content-Type: application/json' \
      -d '{"username":"alice","password":"demo"}' | jq -r .access_token)
  curl -s -o /dev/null -w '%%{http_code}\n' -X POST %[1]s/v1/logout/all -H "Authorization: Bearer $AT"
  curl -s -o /dev/null -w '%%{http_code}\n' %[3]s/v1/me -H "Authorization: Bearer $AT"

  # 7. what a proxy (nginx auth_request, Traefik forwardAuth, Envoy) asks verifierd:
  #    200 with X-Auth-Subject and the other identity headers, or 401 with the reason
  curl -si %[8]s/v1/check -H "Authorization: Bearer $AT" | grep -i -e '^HTTP' -e '^x-auth-subject' -e www-authenticate

  # revoke directly through the revoker, as a backend would
  curl -s -X POST %[2]s/v1/revocations -H 'Authorization: Bearer dev-service-token' \
      -H 'Content-Type: application/json' -d '{"type":"subject","sub":"bob"}'

  # and wait until every live replica enforces it (the answer lists them)
  curl -s -X POST '%[2]s/v1/revocations?wait=enforced' -H 'Authorization: Bearer dev-service-token' \
      -H 'Content-Type: application/json' -d '{"type":"session","sid":"demo-session"}' | jq .enforcement

  # the fleet, the stream and the last revocations, live: open %[2]s/console in a
  # browser and log in with %[9]q

`, s.IssuerURL, s.RevokerURL, s.ExampleURLs[0], devmode.DemoPassword, devmode.ServiceCredential, s.NATSURL, s.RedisAddr, s.AuthorizerURL, devmode.ConsoleCredential)
}
