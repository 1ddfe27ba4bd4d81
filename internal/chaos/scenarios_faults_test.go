//go:build chaos

// The fault scenarios. They need tens of seconds each, so they are built
// only with -tags chaos (make chaos); see docs/failure-testing.md.

package chaos

import (
	"context"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// TestRestartAllNATS stops every node of the cluster at once, keeps them
// down, and starts them again from their stores.
func TestRestartAllNATS(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.start()
	for range e.sz.repeat {
		e.waitAcks(t, 5, 20*time.Second)
		hold(e.sz.phase)
		for _, nd := range e.cluster.Nodes() {
			nd.Shutdown()
		}
		hold(e.sz.phase)
		for _, nd := range e.cluster.Nodes() {
			nd.Restart(t)
		}
		e.cluster.WaitJetStream(t)
		drainAcks(e)
		e.waitAcks(t, 5, 30*time.Second)
	}
	hold(e.sz.phase)
	e.finish(t, "restart all NATS nodes", "3 nodes stopped for one phase, then restarted")
}

// TestKillStreamLeader stops the node leading the stream's RAFT group,
// waits for another leader, then restarts the node.
func TestKillStreamLeader(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.start()
	for range e.sz.repeat {
		e.waitAcks(t, 5, 20*time.Second)
		hold(e.sz.phase)
		old := e.streamLeader(t, "")
		e.cluster.Node(old).Shutdown()
		e.streamLeader(t, old)
		drainAcks(e)
		e.waitAcks(t, 5, 30*time.Second)
		e.cluster.Node(old).Restart(t)
		hold(e.sz.phase)
	}
	e.finish(t, "kill stream leader", "the stream leader's node stopped, new leader elected, node restarted")
}

// TestPartitionReplica puts replica r0 behind proxies: latency, then a
// reset of every connection, then a full partition longer than
// MaxStaleness, then heals.
func TestPartitionReplica(t *testing.T) {
	e := newEnv(t, envOptions{proxied: true})
	e.start()
	r0 := e.reps[0]
	for range e.sz.repeat {
		e.waitAcks(t, 5, 20*time.Second)
		for _, p := range e.proxies {
			p.SetLatency(50 * time.Millisecond)
		}
		hold(e.sz.phase)
		for _, p := range e.proxies {
			p.SetLatency(0)
			p.Reset()
		}
		r0.waitDeciding(t, 20*time.Second)
		for _, p := range e.proxies {
			p.Partition()
		}
		eventually.True(t, 20*time.Second, "r0 to stop deciding while cut off", func() bool { return !r0.deciding() })
		hold(e.sz.phase)
		for _, p := range e.proxies {
			p.Heal()
		}
		r0.waitDeciding(t, 30*time.Second)
		hold(e.sz.phase)
	}
	e.finish(t, "partition one replica", "50ms latency, RST of every connection, full partition past MaxStaleness, heal")
}

// TestRestartReplicas restarts each replica while revocations keep coming,
// so each new incarnation replays a stream that grows under it.
func TestRestartReplicas(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.start()
	for range e.sz.repeat {
		for _, r := range e.reps {
			e.waitAcks(t, 3, 20*time.Second)
			r.restart(t)
		}
		for _, r := range e.reps {
			r.waitDeciding(t, 30*time.Second)
		}
	}
	hold(e.sz.phase)
	e.finish(t, "restart replicas", "each replica stopped and started again mid-workload")
}

// streamLeader waits until the stream has a leader other than not and
// returns it.
func (e *env) streamLeader(tb testing.TB, not string) string {
	tb.Helper()
	var leader string
	eventually.True(tb, 30*time.Second, "a stream leader other than "+not, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		l, err := StreamLeader(ctx, e.js, events.DefaultStreamName)
		if err != nil || l == "" || l == not {
			return false
		}
		leader = l
		return true
	})
	return leader
}

// drainAcks forgets the acknowledgements counted so far.
func drainAcks(e *env) {
	for {
		select {
		case <-e.acked:
		default:
			return
		}
	}
}

// waitAcks waits until n more revocations were acknowledged.
func (e *env) waitAcks(tb testing.TB, n int, timeout time.Duration) {
	tb.Helper()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for range n {
		select {
		case <-e.acked:
		case <-t.C:
			tb.Fatalf("chaos: fewer than %d revocations acknowledged within %s", n, timeout)
		}
	}
}

// restart stops the current incarnation and starts a new one.
func (r *replica) restart(tb testing.TB) {
	tb.Helper()
	r.stop()
	r.start(tb)
}
