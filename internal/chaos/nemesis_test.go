package chaos

import (
	"flag"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
)

// seed orders the nemesis' faults; 0 picks one (logged, to replay a run).
var seed = flag.Uint64("chaos.seed", 0, "seed of the nemesis' fault order (0: a random one, logged)")

// fault is one injection of the nemesis: it breaks something, lets the
// workload run through it, and repairs it.
type fault struct {
	name   string
	inject func(t *testing.T, e *env, rng *mrand.Rand)
}

// faults are every fault of the suite, for the nemesis to mix.
var faults = []fault{
	{"kill the stream leader", func(t *testing.T, e *env, _ *mrand.Rand) { killStreamLeader(t, e) }},
	{"restart all NATS nodes", func(t *testing.T, e *env, _ *mrand.Rand) { restartAllNATS(t, e) }},
	{"latency and connection resets between r0 and NATS", func(t *testing.T, e *env, _ *mrand.Rand) { slowThenReset(e) }},
	{"partition r0 from NATS past MaxStaleness", func(t *testing.T, e *env, _ *mrand.Rand) { partitionR0(t, e) }},
	{"restart redis-server", func(t *testing.T, e *env, _ *mrand.Rand) {
		e.redis.Stop()
		hold(e.sz.phase)
		e.redis.Restart(t)
	}},
	{"restart a replica mid-workload", func(t *testing.T, e *env, rng *mrand.Rand) {
		e.reps[rng.IntN(len(e.reps))].restart(t)
	}},
	{"kill the revoker, start a new one", func(t *testing.T, e *env, _ *mrand.Rand) {
		e.rv.Load().crash()
		e.rv.Store(e.startRevoker(t, nil))
	}},
}

// killStreamLeader stops the node leading the stream's RAFT group, waits
// for another leader, lets the workload run a phase, and restarts the node.
func killStreamLeader(t *testing.T, e *env) {
	old := e.streamLeader(t, "")
	e.cluster.Node(old).Shutdown()
	e.streamLeader(t, old)
	hold(e.sz.phase)
	e.cluster.Node(old).Restart(t)
}

// restartAllNATS stops every node at once, keeps them down a phase, and
// starts them again from their stores.
func restartAllNATS(t *testing.T, e *env) {
	for _, nd := range e.cluster.Nodes() {
		nd.Shutdown()
	}
	hold(e.sz.phase)
	for _, nd := range e.cluster.Nodes() {
		nd.Restart(t)
	}
	e.cluster.WaitJetStream(t)
}

// slowThenReset delays everything between r0 and NATS by 50ms for a phase,
// then resets every one of those connections.
func slowThenReset(e *env) {
	for _, p := range e.proxies {
		p.SetLatency(50 * time.Millisecond)
	}
	hold(e.sz.phase)
	for _, p := range e.proxies {
		p.SetLatency(0)
		p.Reset()
	}
}

// partitionR0 cuts r0 off from NATS until it stops deciding (past
// MaxStaleness), keeps it cut off a phase, and heals.
func partitionR0(t *testing.T, e *env) {
	r0 := e.reps[0]
	for _, p := range e.proxies {
		p.Partition()
	}
	eventually.True(t, 20*time.Second, "r0 to stop deciding while cut off", func() bool { return !r0.deciding() })
	hold(e.sz.phase)
	for _, p := range e.proxies {
		p.Heal()
	}
}

// TestNemesis injects every fault, one after another in an order drawn
// from a seed, into one running system, and checks the whole history.
// After each fault it waits until every replica decides again and the
// workload has been acknowledged anew, so each fault starts from a working
// system that the previous one left behind. The short mode (make test)
// injects each fault once; -chaos.long does three rounds with longer
// phases.
func TestNemesis(t *testing.T) {
	s := *seed
	if s == 0 {
		s = mrand.Uint64()
	}
	rng := mrand.New(mrand.NewPCG(s, s))
	t.Logf("nemesis seed %d (replay with -chaos.seed=%d)", s, s)

	e := newEnv(t, envOptions{proxied: true})
	e.start()
	e.waitAcks(t, 3, 20*time.Second)
	var done []string
	for round := range e.sz.repeat {
		order := rng.Perm(len(faults))
		for _, i := range order {
			f := faults[i]
			at := e.rec.Now()
			f.inject(t, e, rng)
			injected := e.rec.Now()
			for _, r := range e.reps {
				r.waitDeciding(t, 30*time.Second)
			}
			deciding := e.rec.Now()
			drainAcks(e)
			e.waitAcks(t, 3, 30*time.Second)
			t.Logf("round %d: %s at %v: injected and repaired in %v, every replica deciding %v later, revocations acknowledged again %v later",
				round, f.name, at.Round(time.Millisecond), (injected - at).Round(time.Millisecond),
				(deciding - injected).Round(time.Millisecond), (e.rec.Now() - deciding).Round(time.Millisecond))
			done = append(done, f.name)
		}
	}
	hold(e.sz.phase)
	e.finish(t, "nemesis: all faults mixed", strings.Join(done, "; "))
}
