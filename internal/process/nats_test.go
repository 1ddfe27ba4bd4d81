package process

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
)

// lockedBuffer is a bytes.Buffer safe for a logger and a test at once.
type lockedBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestNATSAuthenticationFailure: wrong credentials are logged as an
// authentication failure, once, with the URL and its password redacted; the
// connection keeps retrying and connects once the server accepts them.
func TestNATSAuthenticationFailure(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true, Username: "svc", Password: "right-password"}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	var logs lockedBuffer
	url := strings.Replace(ns.ClientURL(), "nats://", "nats://svc:wrong-password@", 1)
	nc, _, err := NATS("test", url, "", slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	eventually.True(t, 10*time.Second, "the authentication failure logged", func() bool {
		return strings.Contains(logs.String(), `"msg":"nats: authentication failed`)
	})
	// Let a few more attempts fail: still one line, the connection not closed.
	attempts := nc.Stats().Reconnects
	eventually.True(t, 15*time.Second, "two more attempts", func() bool { return nc.Stats().Reconnects >= attempts+2 })
	out := logs.String()
	if n := strings.Count(out, "nats: authentication failed"); n != 1 {
		t.Fatalf("%d authentication-failure lines, want 1:\n%s", n, out)
	}
	if strings.Contains(out, "wrong-password") || !strings.Contains(out, "svc:xxxxx@127.0.0.1") {
		t.Fatalf("the log must name the URL with its password redacted:\n%s", out)
	}
	if nc.IsClosed() {
		t.Fatal("the connection gave up after authentication failures")
	}

	// The server now accepts the credentials: the same connection connects.
	accepted := opts.Clone() // the server owns opts
	accepted.Password = "wrong-password"
	if err := ns.ReloadOptions(accepted); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 15*time.Second, "connected once the credentials are accepted", func() bool {
		return nc.Status() == nats.CONNECTED && strings.Contains(logs.String(), `"msg":"nats: connected"`)
	})
}
