package chaos

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// nodeStartTimeout bounds how long a node may take to accept clients.
const nodeStartTimeout = 10 * time.Second

// Cluster is an in-process NATS cluster with JetStream, every node on
// 127.0.0.1 with fixed client and route ports (so a restarted node comes
// back where clients and peers expect it) and its store under the test's
// TempDir. It is safe for concurrent use.
type Cluster struct {
	nodes []*Node
}

// Node is one server of a [Cluster]. It is safe for concurrent use.
type Node struct {
	name   string
	opts   server.Options // template; copied on each start
	client string         // nats://127.0.0.1:port

	// mu guards srv: the running server, nil while stopped.
	mu  sync.Mutex
	srv *server.Server
}

// StartCluster starts n nodes routed to each other and waits until
// JetStream has a meta leader. Every node is shut down at tb's Cleanup.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c := &Cluster{}
	clientPorts, routePorts := make([]int, n), make([]int, n)
	for i := range n {
		clientPorts[i], routePorts[i] = freePort(tb), freePort(tb)
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
	}
	for i := range n {
		nd := &Node{
			name:   fmt.Sprintf("n%d", i+1),
			client: "nats://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(clientPorts[i])),
		}
		nd.opts = server.Options{
			ServerName: nd.name,
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			Cluster:    server.ClusterOpts{Name: "chaos", Host: "127.0.0.1", Port: routePorts[i]},
			Routes:     routes,
			JetStream:  true,
			StoreDir:   tb.TempDir(),
			NoLog:      true,
			NoSigs:     true,
		}
		c.nodes = append(c.nodes, nd)
		tb.Cleanup(nd.Shutdown)
	}
	for _, nd := range c.nodes {
		if err := nd.start(); err != nil {
			tb.Fatalf("chaos: %v", err)
		}
	}
	c.WaitJetStream(tb)
	return c
}

// freePort returns a port that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("chaos: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (nd *Node) start() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.srv != nil {
		return nil
	}
	opts := nd.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("node %s: %w", nd.name, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(nodeStartTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("node %s not ready after %s", nd.name, nodeStartTimeout)
	}
	nd.srv = srv
	return nil
}

// Name is the node's server name, as stream info reports leaders.
func (nd *Node) Name() string { return nd.name }

// URL is the node's client URL.
func (nd *Node) URL() string { return nd.client }

// Shutdown stops the node and waits until it has stopped; its store is
// kept. Stopping a stopped node does nothing.
func (nd *Node) Shutdown() {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.srv == nil {
		return
	}
	nd.srv.Shutdown()
	nd.srv.WaitForShutdown()
	nd.srv = nil
}

// Restart starts a stopped node again with the same ports and store,
// failing the test if it does not come up.
func (nd *Node) Restart(tb testing.TB) {
	tb.Helper()
	if err := nd.start(); err != nil {
		tb.Fatalf("chaos: restart: %v", err)
	}
}

// Nodes returns the cluster's nodes.
func (c *Cluster) Nodes() []*Node { return c.nodes }

// Node returns the node named name, or nil.
func (c *Cluster) Node(name string) *Node {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	return nil
}

// URLs returns every node's client URL.
func (c *Cluster) URLs() []string {
	var us []string
	for _, nd := range c.nodes {
		us = append(us, nd.client)
	}
	return us
}

// Connect connects to urls (default: every node) with a client that
// reconnects forever every 25 ms, pings every 250 ms (so a blackholed
// connection is noticed within a second) and ignores servers the cluster
// advertises (so a connection made through a proxy stays behind it). The
// connection is closed at tb's Cleanup.
func (c *Cluster) Connect(tb testing.TB, urls ...string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	if len(urls) == 0 {
		urls = c.URLs()
	}
	nc, js, err := Dial(urls)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	tb.Cleanup(nc.Close)
	return nc, js
}

// Dial is the connection [Cluster.Connect] makes, for callers that close
// it themselves (a replica's incarnation).
func Dial(urls []string) (*nats.Conn, jetstream.JetStream, error) {
	joined := strings.Join(urls, ",")
	nc, err := nats.Connect(joined,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(25*time.Millisecond),
		nats.ReconnectJitter(0, 0),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(250*time.Millisecond),
		nats.MaxPingsOutstanding(3),
		nats.Timeout(time.Second),
		nats.IgnoreDiscoveredServers(),
	)
	if err != nil {
		return nil, nil, fmt.Errorf("chaos: connect %s: %w", joined, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("chaos: jetstream: %w", err)
	}
	return nc, js, nil
}

// WaitJetStream waits until every running node agrees on a JetStream meta
// leader, failing the test after 30 s.
func (c *Cluster) WaitJetStream(tb testing.TB) {
	tb.Helper()
	eventually.True(tb, 30*time.Second, "a JetStream meta leader", func() bool {
		leader := false
		for _, nd := range c.nodes {
			nd.mu.Lock()
			srv := nd.srv
			nd.mu.Unlock()
			if srv == nil {
				continue
			}
			if !srv.JetStreamIsCurrent() {
				return false
			}
			leader = leader || srv.JetStreamIsLeader()
		}
		return leader
	})
}

// StreamLeader returns the name of the node leading stream's RAFT group
// ("" while it has none).
func StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", fmt.Errorf("chaos: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("chaos: stream info %s: %w", stream, err)
	}
	if info.Cluster == nil {
		return "", nil
	}
	return info.Cluster.Leader, nil
}
