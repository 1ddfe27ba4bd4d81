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
	"sync"
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

// appliedLogger returns a verifier.Config.OnApplied that writes one JSON
// line per applied event,
// {"msg":"revocation applied","id":...,"applied_unix_ns":...}, to w
// through a lineBuffer (bench/e2e reads them; the instant is the
// verifier's own clock, taken when applied, not when written), and the
// function that writes what is still buffered.
func appliedLogger(w io.Writer) (onApplied func(events.Event, time.Time), flush func()) {
	b := newLineBuffer(w)
	log := slog.New(slog.NewJSONHandler(b, nil))
	return func(e events.Event, applied time.Time) {
		log.LogAttrs(context.Background(), slog.LevelInfo, "revocation applied",
			slog.String("id", e.ID), slog.Int64("applied_unix_ns", applied.UnixNano()))
	}, b.flush
}

// Limits of a lineBuffer.
const (
	// lineFlushAfter is the longest a line waits in a lineBuffer.
	lineFlushAfter = 2 * time.Millisecond
	// lineBufferSize is how much a lineBuffer holds before it writes.
	lineBufferSize = 32 << 10
)

// lineBuffer collects whole lines (each Write is one, as slog's handlers
// write) and writes them to w together, lineFlushAfter after the first
// one not yet written or once lineBufferSize is held: a replica applying
// a batch of a thousand events makes a few writes, not a thousand, so the
// measurement does not take the CPU it measures. Writes to w are whole
// lines, so they interleave with other writers of w line by line.
type lineBuffer struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer
}

func newLineBuffer(w io.Writer) *lineBuffer {
	b := &lineBuffer{w: w}
	b.timer = time.AfterFunc(time.Hour, b.flush)
	b.timer.Stop()
	return b
}

func (b *lineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		b.timer.Reset(lineFlushAfter)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= lineBufferSize {
		b.writeLocked()
	}
	return len(p), nil
}

// flush writes what is buffered.
func (b *lineBuffer) flush() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writeLocked()
}

func (b *lineBuffer) writeLocked() {
	if len(b.buf) > 0 {
		_, _ = b.w.Write(b.buf)
		b.buf = b.buf[:0]
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
		onApplied, flush := appliedLogger(os.Stderr)
		defer flush()
		vc.OnApplied = onApplied
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
