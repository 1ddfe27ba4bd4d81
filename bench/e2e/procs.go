package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errNotReady is returned by waitReady when the deadline passes first.
var errNotReady = errors.New("bench: not ready in time")

// child is one OS process the benchmark started.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process exited and its output was read

	// mu guards tail, the last lines of the process's output (for errors).
	mu   sync.Mutex
	tail []string
}

// Tail returns the last lines the process wrote.
func (c *child) Tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.tail, "\n")
}

// Exited reports whether the process has exited.
func (c *child) Exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to grace, then kills the process.
func (c *child) Stop(grace time.Duration) {
	if c.Exited() {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// procs owns every child process; Close stops them all. Safe for
// concurrent use.
type procs struct {
	// mu guards list.
	mu   sync.Mutex
	list []*child
}

// start runs bin with args and env (added to the environment without any
// inherited JWTREVOKE_ variable). Every line the process writes to stdout
// or stderr goes to onLine (which may be nil) from one goroutine, which
// ends when the process exits. The child gets SIGKILL if the benchmark
// dies (Pdeathsig), so nothing outlives it even on a crash.
func (p *procs) start(name, bin string, args, env []string, onLine func([]byte)) (*child, error) {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JWTREVOKE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	p.mu.Lock()
	p.list = append(p.list, c)
	p.mu.Unlock()
	// Ends when the process exits: Wait returns, the pipe closes, the
	// reader sees EOF.
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(fmt.Errorf("%s exited: %v", name, err))
	}()
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if onLine != nil {
				onLine(line)
			}
			c.mu.Lock()
			if len(c.tail) == 20 {
				c.tail = c.tail[1:]
			}
			c.tail = append(c.tail, string(line))
			c.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr) // a line too long: drain so the child never blocks
	}()
	return c, nil
}

// Close stops every child, newest first.
func (p *procs) Close() {
	p.mu.Lock()
	list := p.list
	p.list = nil
	p.mu.Unlock()
	for i := len(list) - 1; i >= 0; i-- {
		list[i].Stop(5 * time.Second)
	}
}

// buildBinaries builds nats-server (from the module's go.mod), the revoker
// and the example service into dir.
func buildBinaries(ctx context.Context, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator),
		"github.com/nats-io/nats-server/v2", "./cmd/revoker", "./cmd/example")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("bench: go build: %w: %s", err, out)
	}
	return nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("bench: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// natsNode is one server of the NATS cluster.
type natsNode struct {
	Name                  string
	ClientPort, RoutePort int
	StoreDir              string
}

// natsConfig returns the configuration file of nodes[i]: loopback only,
// JetStream in its store directory, routes to every other node.
func natsConfig(nodes []natsNode, i int) string {
	n := nodes[i]
	var routes []string
	for j, o := range nodes {
		if j != i {
			routes = append(routes, fmt.Sprintf("    nats-route://127.0.0.1:%d", o.RoutePort))
		}
	}
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: bench
  listen: 127.0.0.1:%d
  routes: [
%s
  ]
}
`, n.Name, n.ClientPort, n.StoreDir, n.RoutePort, strings.Join(routes, "\n"))
}

// clientURLs returns the comma-separated client URLs of nodes.
func clientURLs(nodes []natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.ClientPort)
	}
	return strings.Join(urls, ",")
}

// waitReady polls url until it answers 200, c exits, ctx ends or timeout
// passes; it returns when the 200 came.
func waitReady(ctx context.Context, hc *http.Client, url string, c *child, timeout time.Duration) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return time.Time{}, fmt.Errorf("bench: %w", err)
		}
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%w: %s %s: %w; last output:\n%s", errNotReady, c.name, url, ctx.Err(), c.Tail())
		case <-c.done:
			return time.Time{}, fmt.Errorf("bench: %s exited; last output:\n%s", c.name, c.Tail())
		case <-tick.C:
		}
	}
}

// rssBytes returns the resident set size of process pid (VmRSS in
// /proc/<pid>/status).
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("bench: rss: %w", err)
	}
	return parseVmRSS(string(b))
}

// parseVmRSS reads the VmRSS line of a /proc/<pid>/status text.
func parseVmRSS(status string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("bench: rss: odd line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: rss: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("bench: rss: no VmRSS line")
}
