package verifiertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startTimeout bounds how long a test waits for the embedded server to
// accept connections, and every request a helper makes on the test's behalf.
const startTimeout = 10 * time.Second

// Server is an in-process nats-server with JetStream enabled, listening on
// 127.0.0.1 on a random port, storing its streams in a directory under the
// test's TempDir. It is for tests only: start one with [RunJetStream].
//
// A Server is safe for concurrent use: Shutdown and Restart may be called
// from any goroutine while clients connected with [Server.Connect] keep
// trying to reconnect.
type Server struct {
	dir string // store directory, kept across Restart

	// mu guards srv, port and admin.
	mu    sync.Mutex
	srv   *server.Server // nil while shut down
	port  int            // chosen on first start, reused by Restart
	admin jetstream.JetStream
}

// RunJetStream starts an embedded JetStream server for tb and registers its
// shutdown with tb.Cleanup. It fails the test if the server does not start
// within a few seconds.
func RunJetStream(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{dir: tb.TempDir(), port: -1}
	if err := s.start(); err != nil {
		tb.Fatalf("verifiertest: %v", err)
	}
	tb.Cleanup(s.Shutdown)
	_, js := s.Connect(tb)
	s.mu.Lock()
	s.admin = js
	s.mu.Unlock()
	return s
}

// start launches a server on s.port (-1: a random one, remembered). The
// caller must not hold s.mu.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      s.port,
		JetStream: true,
		StoreDir:  s.dir,
		NoLog:     true,
		NoSigs:    true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("new nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("nats server not ready after %s", startTimeout)
	}
	if s.port == -1 {
		addr, ok := srv.Addr().(*net.TCPAddr)
		if !ok {
			srv.Shutdown()
			return fmt.Errorf("nats server address %v is not tcp", srv.Addr())
		}
		s.port = addr.Port
	}
	s.srv = srv
	return nil
}

// URL returns the client URL of the server, nats://127.0.0.1:port. It stays
// the same across [Server.Restart].
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Connect returns a client connection to the server and a JetStream context
// on it, both closed at tb's Cleanup. The connection reconnects forever,
// every 25 ms, so it survives [Server.Shutdown] followed by
// [Server.Restart].
func (s *Server) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(s.URL(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(25*time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.Timeout(startTimeout),
	)
	if err != nil {
		tb.Fatalf("verifiertest: connect to %s: %v", s.URL(), err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("verifiertest: jetstream: %v", err)
	}
	return nc, js
}

// Shutdown stops the server and waits until it has stopped. The store
// directory is kept, so [Server.Restart] brings every stream back. Calling
// it on a stopped server does nothing.
func (s *Server) Shutdown() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Restart starts a stopped server again on the same port with the same store
// directory, so clients from [Server.Connect] reconnect by themselves and
// find their streams. It fails the test if the server does not come back.
// Restarting a running server does nothing.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	// The port was just released; another process may hold it for a moment.
	var err error
	if !eventually.Until(startTimeout, func() bool { err = s.start(); return err == nil }) {
		tb.Fatalf("verifiertest: restart: %v", err)
	}
}

// EnsureStream creates or updates the revocation stream for o, as
// [events.EnsureStream] does, failing the test on error.
func (s *Server) EnsureStream(tb testing.TB, o events.StreamOptions) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	if _, err := events.EnsureStream(ctx, s.js(), o); err != nil {
		tb.Fatalf("verifiertest: %v", err)
	}
}

// Revoke publishes e with [events.Publish] and returns the stream's
// acknowledgement, failing the test on error. It is the way a test injects a
// revocation into every verifier fed by this server.
//
// Each attempt is bounded by publishAttempt and retried until startTimeout:
// right after a [Server.Restart], a JetStream request sent as the
// connection comes back can go unanswered (about one run in four here),
// and a retry of the same event is stored once (Nats-Msg-Id).
func (s *Server) Revoke(tb testing.TB, e events.Event) *jetstream.PubAck {
	tb.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(tb.Context(), publishAttempt)
		ack, err := events.Publish(ctx, s.js(), e)
		cancel()
		switch {
		case err == nil:
			return ack
		case errors.Is(err, events.ErrInvalid) || time.Now().After(deadline):
			tb.Fatalf("verifiertest: revoke: %v", err)
			return nil
		}
	}
}

// publishAttempt bounds one attempt of [Server.Revoke].
const publishAttempt = 2 * time.Second

func (s *Server) js() jetstream.JetStream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admin
}

// Encoded validates and encodes e (events.NewEncoded), failing the test if
// e is not valid: for tests that record or publish events they built.
func Encoded(tb testing.TB, e events.Event) events.Encoded {
	tb.Helper()
	x, err := events.NewEncoded(e)
	if err != nil {
		tb.Fatalf("verifiertest: encode %s: %v", e.ID, err)
	}
	return x
}

// EventAt returns event id from the revocation stream's message at seq
// (one event, or a batch message's), decoded by the consumers' rule
// ([events.MsgEvents]); it fails the test if that message does not carry
// it.
func EventAt(tb testing.TB, js jetstream.JetStream, seq uint64, id string) events.Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		tb.Fatalf("stream: %v", err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		tb.Fatalf("message %d: %v", seq, err)
	}
	evs, err := events.MsgEvents(m.Subject, m.Data)
	if err != nil {
		tb.Fatalf("message %d: %v", seq, err)
	}
	for _, ev := range evs {
		if ev.ID == id {
			return ev
		}
	}
	tb.Fatalf("message %d (%s) does not carry event %s", seq, m.Subject, id)
	return events.Event{}
}
