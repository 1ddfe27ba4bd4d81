// Package process is the wiring every jwtrevoke binary shares: connecting
// to NATS and Redis the same way, and running a service beside its HTTP
// server until a signal, so the binaries stay thin and behave alike.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// NATS connects to the comma-separated NATS URLs as name, with an optional
// credentials file. It keeps reconnecting for ever and does not fail when
// NATS is down at start: the service stays not ready until it connects. A
// refused authentication is retried the same way (credentials may be
// fixed on either side without a restart) rather than closing the
// connection. Every binary logs the connection's life the same way to log,
// once per change of state, with the URLs' passwords redacted:
// "nats: authentication failed" (error), "nats: cannot connect, retrying",
// "nats: disconnected" (warnings), "nats: connected" (info).
func NATS(name, urls, creds string, log *slog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	if log == nil {
		log = slog.Default()
	}
	st := &natsState{log: log.With("url", RedactURLs(urls), "name", name)}
	opts := []nats.Option{
		nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true), nats.IgnoreAuthErrorAbort(),
		nats.ConnectHandler(func(*nats.Conn) { st.report("connected", nil) }),
		nats.ReconnectHandler(func(*nats.Conn) { st.report("connected", nil) }),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { st.report("cannot connect", err) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { st.report("disconnected", err) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { st.report("error", err) }),
		nats.ClosedHandler(func(*nats.Conn) { st.report("closed", nil) }),
	}
	return ConnectNATS(urls, creds, opts...)
}

// ConnectNATS connects to urls with the credentials file creds (if set)
// and opts, and returns the connection and its JetStream context: what
// NATS does for a service, and what a command that fails fast does with
// options of its own.
func ConnectNATS(urls, creds string, opts ...nats.Option) (*nats.Conn, jetstream.JetStream, error) {
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("nats: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	return nc, js, nil
}

// natsState logs a NATS connection's changes of state.
type natsState struct {
	log *slog.Logger

	mu   sync.Mutex // guards last
	last string
}

// isAuthError reports whether err is the server refusing the credentials.
func isAuthError(err error) bool {
	return errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) ||
		errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAccountAuthExpired) ||
		strings.Contains(strings.ToLower(fmt.Sprint(err)), "authorization violation")
}

// report logs event unless it repeats the last state (errors other than
// authentication failures are logged every time: they are rare and differ).
func (s *natsState) report(event string, err error) {
	state := event
	if isAuthError(err) {
		state = "authentication failed"
	}
	s.mu.Lock()
	repeat := state == s.last
	s.last = state
	s.mu.Unlock()
	if repeat && state != "error" {
		return
	}
	switch state {
	case "authentication failed":
		s.log.Error("nats: authentication failed, retrying: check the user, password or credentials file", "err", err)
	case "connected":
		s.log.Info("nats: connected")
	case "cannot connect":
		s.log.Warn("nats: cannot connect, retrying", "err", err)
	case "disconnected":
		s.log.Warn("nats: disconnected, reconnecting", "err", err)
	case "closed":
		s.log.Info("nats: connection closed")
	default:
		s.log.Warn("nats: error", "err", err)
	}
}

// Redis returns a client for one server, Sentinel (master set) or Cluster
// (several addresses) — one setting moves between them. Timeouts are short
// and dials are not retried in a loop, so a Redis outage turns into a 503
// within about a second instead of stalling requests.
func Redis(addrs, master, password string) redis.UniversalClient {
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         SplitList(addrs),
		MasterName:    master,
		Password:      password,
		DialTimeout:   time.Second,
		ReadTimeout:   time.Second,
		WriteTimeout:  time.Second,
		MaxRetries:    1,
		DialerRetries: 1,
	})
}

// Run runs every f with a context that ends when ctx ends or when any f
// returns; it waits for all of them and joins their errors.
func Run(ctx context.Context, fs ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(fs))
	for i, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx)
			cancel() // one stopping stops the others
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RedactURLs returns comma-separated URLs with any password replaced by
// "xxxxx", for logs (NATS URLs may carry user:password).
func RedactURLs(urls string) string {
	parts := SplitList(urls)
	for i, p := range parts {
		if u, err := url.Parse(p); err == nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// SplitList splits a setting on commas and newlines (so a list can come
// from a file, one item per line), dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
