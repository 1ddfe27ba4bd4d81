//go:build chaos

// The fault scenarios. They need tens of seconds each, so they are built
// only with -tags chaos (make chaos); see docs/failure-testing.md.

package chaos

import (
	"testing"
	"time"
)

// TestRestartAllNATS stops every node of the cluster at once, keeps them
// down, and starts them again from their stores.
func TestRestartAllNATS(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.start()
	for range e.sz.repeat {
		e.waitAcks(t, 5, 20*time.Second)
		hold(e.sz.phase)
		restartAllNATS(t, e)
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
		killStreamLeader(t, e)
		drainAcks(e)
		e.waitAcks(t, 5, 30*time.Second)
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
		slowThenReset(e)
		r0.waitDeciding(t, 20*time.Second)
		partitionR0(t, e)
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
