// Package redistest runs a real redis-server process for tests. It is
// test-only: nothing outside _test.go files may import it.
//
// Every [Server] listens on its own free port on 127.0.0.1 with its own
// temporary directory and no persistence, so tests never use (nor collide
// with) a Redis service of the machine on 6379. redis-server must be on
// PATH: `make deps` installs it; without it [Run] fails the test (it never
// skips).
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds how long a start may take until PING answers.
const startTimeout = 10 * time.Second

// Server is a redis-server process owned by one test. Its methods are safe
// for concurrent use.
type Server struct {
	dir  string
	port int

	// mu guards proc and exited: the running process, if any, and the
	// channel closed when it has exited.
	mu     sync.Mutex
	proc   *exec.Cmd
	exited chan struct{}
}

// Run starts a redis-server on a free 127.0.0.1 port with a directory from
// tb.TempDir, waits until it answers PING, and kills it when the test ends.
// It fails the test if redis-server is not installed or does not start.
func Run(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redistest: redis-server not found on PATH: run `make deps` (installs redis-server): %v", err)
	}
	s := &Server{dir: tb.TempDir()}
	tb.Cleanup(s.Stop)
	// The free port is found by listening on :0 and closing, so another
	// process may take it before redis-server binds: try again then.
	var err error
	for range 5 {
		if s.port, err = freePort(); err != nil {
			tb.Fatalf("redistest: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	tb.Fatalf("redistest: %v", err)
	return nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Client returns a client of the server, closed when the test ends.
func (s *Server) Client(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Stop kills the server (SIGKILL: no goodbye to clients) and waits for it to
// exit. Its data is lost. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart stops the server if it runs and starts it again on the same port
// with the same directory (and, as nothing is persisted, empty).
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop()
	var err error
	// The port was ours a moment ago, but another process may grab it.
	for range 5 {
		if err = s.start(); err == nil {
			return
		}
	}
	tb.Fatalf("redistest: restart: %v", err)
}

func (s *Server) stopLocked() {
	if s.proc == nil {
		return
	}
	_ = s.proc.Process.Kill()
	<-s.exited
	s.proc, s.exited = nil, nil
}

// start launches redis-server on s.port and waits until it answers PING or
// exits; on failure nothing is left running.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	logFile := filepath.Join(s.dir, "redis.log")
	_ = os.Remove(logFile)
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", logFile,
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan struct{})
	// Ends when the process exits; Stop kills it, and Run registers Stop
	// with Cleanup.
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.proc, s.exited = cmd, exited

	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ping(s.Addr())
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.stopLocked()
			return fmt.Errorf("redis-server on port %d did not answer PING within %s: %w; log: %s",
				s.port, startTimeout, err, readLog(logFile))
		}
		select {
		case <-exited:
			s.proc, s.exited = nil, nil
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, readLog(logFile))
		case <-tick.C:
		}
	}
}

// ping sends PING over a fresh connection and expects +PONG. It speaks RESP
// itself rather than through go-redis, whose pool logs every refused dial.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" { // e.g. -LOADING while it starts
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

func readLog(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const limit = 2000
	if len(b) > limit {
		b = b[len(b)-limit:]
	}
	return string(b)
}

// freePort returns a port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
