package chaos

import (
	"slices"
	"testing"
	"time"
)

const ms = time.Millisecond

// ev names event id revoking value of kind k.
func ev(id string, k Kind, value string) Stored { return Stored{ID: id, Kind: k, Value: value} }

// baseHistory is a correct run: replica "a" applies the token revocation
// r1 5ms after its ack, refuses j1 and accepts j2.
func baseHistory() History {
	return History{
		Revocations:  []Revocation{{ID: "r1", Kind: KindToken, Value: "j1", Start: 10 * ms, End: 20 * ms, Acked: true}},
		Incarnations: []Incarnation{{Name: "a", Start: 0, Ready: 5 * ms, Stop: -1}},
		Applied:      []Applied{{Replica: "a", Stored: ev("r1", KindToken, "j1"), At: 25 * ms}},
		Deciding:     []Deciding{{Replica: "a", At: 6 * ms}, {Replica: "a", At: 100 * ms}},
		Requests: []Request{
			{Replica: "a", JTI: "j1", SID: "s1", Sub: "alice", Start: 100 * ms, End: 101 * ms, Outcome: Revoked},
			{Replica: "a", JTI: "j2", SID: "s2", Sub: "alice", Start: 100 * ms, End: 101 * ms, Outcome: Accepted},
		},
		Stream: []Stored{ev("r1", KindToken, "j1")},
	}
}

func TestCheck(t *testing.T) {
	const p = 50 * ms
	tests := []struct {
		name string
		edit func(h *History)
		want []Property
	}{
		{name: "correct run", edit: func(*History) {}},
		{
			name: "applied after the bound while deciding",
			edit: func(h *History) { h.Applied[0].At = 200 * ms },
			want: []Property{EnforcedInBound},
		},
		{
			name: "never applied by a running replica, no deciding sample after the bound",
			edit: func(h *History) { h.Applied = nil; h.Deciding = h.Deciding[:1] },
			want: []Property{NothingLost},
		},
		{
			name: "accepted a revoked token after the bound",
			edit: func(h *History) {
				h.Requests = append(h.Requests, Request{Replica: "a", JTI: "j1", SID: "s9", Sub: "bob", Start: 71 * ms, End: 72 * ms, Outcome: Accepted})
			},
			want: []Property{NoLateAccept},
		},
		{
			name: "accepted a revoked token within the bound",
			edit: func(h *History) {
				h.Requests = append(h.Requests, Request{Replica: "a", JTI: "j1", SID: "s9", Sub: "bob", Start: 60 * ms, End: 61 * ms, Outcome: Accepted})
			},
		},
		{
			name: "ready before replaying an earlier ack",
			edit: func(h *History) {
				h.Incarnations = append(h.Incarnations, Incarnation{Name: "b", Start: 30 * ms, Ready: 35 * ms, Stop: -1})
				h.Applied = append(h.Applied, Applied{Replica: "b", Stored: ev("r1", KindToken, "j1"), At: 40 * ms})
			},
			want: []Property{ReadyAfterReplay},
		},
		{
			name: "accepted, within the bound, a token revoked before the replica started",
			edit: func(h *History) {
				h.Incarnations = append(h.Incarnations, Incarnation{Name: "b", Start: 30 * ms, Ready: 35 * ms, Stop: -1})
				h.Applied = append(h.Applied, Applied{Replica: "b", Stored: ev("r1", KindToken, "j1"), At: 32 * ms})
				h.Requests = append(h.Requests, Request{Replica: "b", JTI: "j1", Start: 36 * ms, End: 37 * ms, Outcome: Accepted})
			},
			want: []Property{ReadyAfterReplay},
		},
		{
			name: "a stopped replica need not apply",
			edit: func(h *History) {
				h.Incarnations = append(h.Incarnations, Incarnation{Name: "b", Start: 1 * ms, Ready: 2 * ms, Stop: 15 * ms})
			},
		},
		{
			name: "acknowledged but not in the stream",
			edit: func(h *History) { h.Stream = []Stored{} },
			want: []Property{NothingLost},
		},
		{
			name: "superseded by a later revocation of the same subject",
			edit: func(h *History) {
				h.Revocations = append(h.Revocations,
					Revocation{ID: "r2", Kind: KindSubject, Value: "dave", Start: 10 * ms, End: 20 * ms, Acked: true},
					Revocation{ID: "r3", Kind: KindSubject, Value: "dave", Start: 30 * ms, End: 40 * ms, Acked: true})
				h.Applied = append(h.Applied, Applied{Replica: "a", Stored: ev("r3", KindSubject, "dave"), At: 42 * ms})
				h.Stream = append(h.Stream, ev("r3", KindSubject, "dave"))
			},
		},
		{
			name: "not superseded by an earlier revocation of the same subject",
			edit: func(h *History) {
				h.Revocations = append(h.Revocations,
					Revocation{ID: "r2", Kind: KindSubject, Value: "dave", Start: 10 * ms, End: 20 * ms, Acked: true},
					Revocation{ID: "r3", Kind: KindSubject, Value: "dave", Start: 30 * ms, End: 40 * ms, Acked: true})
				h.Applied = append(h.Applied, Applied{Replica: "a", Stored: ev("r2", KindSubject, "dave"), At: 22 * ms})
				h.Stream = append(h.Stream, ev("r2", KindSubject, "dave"))
			},
			want: []Property{EnforcedInBound, NothingLost, NothingLost},
		},
		{
			name: "a token revoked again is enforced by its first revocation",
			edit: func(h *History) {
				h.Revocations = append(h.Revocations, Revocation{ID: "r4", Kind: KindToken, Value: "j1", Start: 30 * ms, End: 40 * ms, Acked: true})
			},
		},
		{
			name: "refused as revoked with nothing asked for",
			edit: func(h *History) {
				h.Requests = append(h.Requests, Request{Replica: "a", JTI: "j3", SID: "s3", Sub: "carol", Start: 100 * ms, End: 101 * ms, Outcome: Revoked})
			},
			want: []Property{NoPhantom},
		},
		{
			name: "refused as revoked by an unacknowledged attempt",
			edit: func(h *History) {
				h.Revocations = append(h.Revocations, Revocation{Kind: KindSession, Value: "s3", Start: 50 * ms, End: 90 * ms})
				h.Requests = append(h.Requests, Request{Replica: "a", JTI: "j3", SID: "s3", Sub: "carol", Start: 100 * ms, End: 101 * ms, Outcome: Revoked})
			},
		},
		{
			name: "refused before the attempt began",
			edit: func(h *History) {
				h.Revocations = append(h.Revocations, Revocation{Kind: KindSession, Value: "s3", Start: 150 * ms, End: 190 * ms})
				h.Requests = append(h.Requests, Request{Replica: "a", JTI: "j3", SID: "s3", Sub: "carol", Start: 100 * ms, End: 101 * ms, Outcome: Revoked})
			},
			want: []Property{NoPhantom},
		},
		{
			name: "subject: older token accepted late",
			edit: func(h *History) {
				h.Revocations = append(h.Revocations, Revocation{ID: "r2", Kind: KindSubject, Value: "dave", Start: 10 * ms, End: 20 * ms, Acked: true})
				h.Applied = append(h.Applied, Applied{Replica: "a", Stored: ev("r2", KindSubject, "dave"), At: 22 * ms})
				h.Stream = append(h.Stream, ev("r2", KindSubject, "dave"))
				h.Requests = append(h.Requests, Request{Replica: "a", JTI: "j4", Sub: "dave", IssuedAt: 5 * ms, Start: 100 * ms, End: 101 * ms, Outcome: Accepted})
			},
			want: []Property{NoLateAccept},
		},
		{
			name: "subject: token issued during the request is undecidable, token issued after is fine",
			edit: func(h *History) {
				h.Revocations = append(h.Revocations, Revocation{ID: "r2", Kind: KindSubject, Value: "dave", Start: 10 * ms, End: 20 * ms, Acked: true})
				h.Applied = append(h.Applied, Applied{Replica: "a", Stored: ev("r2", KindSubject, "dave"), At: 22 * ms})
				h.Stream = append(h.Stream, ev("r2", KindSubject, "dave"))
				h.Requests = append(h.Requests,
					Request{Replica: "a", JTI: "j4", Sub: "dave", IssuedAt: 15 * ms, Start: 100 * ms, End: 101 * ms, Outcome: Accepted},
					Request{Replica: "a", JTI: "j5", Sub: "dave", IssuedAt: 15 * ms, Start: 100 * ms, End: 101 * ms, Outcome: Revoked},
					Request{Replica: "a", JTI: "j6", Sub: "dave", IssuedAt: 30 * ms, Start: 100 * ms, End: 101 * ms, Outcome: Accepted},
				)
			},
		},
		{
			name: "subject: token issued after the revocation refused as revoked",
			edit: func(h *History) {
				h.Revocations = append(h.Revocations, Revocation{ID: "r2", Kind: KindSubject, Value: "dave", Start: 10 * ms, End: 20 * ms, Acked: true})
				h.Applied = append(h.Applied, Applied{Replica: "a", Stored: ev("r2", KindSubject, "dave"), At: 22 * ms})
				h.Stream = append(h.Stream, ev("r2", KindSubject, "dave"))
				h.Requests = append(h.Requests, Request{Replica: "a", JTI: "j6", Sub: "dave", IssuedAt: 30 * ms, Start: 100 * ms, End: 101 * ms, Outcome: Revoked})
			},
			want: []Property{NoPhantom},
		},
		{
			// A session revocation answered "recorded" at 30ms while NATS
			// was unreachable (reachable again at 40ms): delivered by the
			// outbox and applied at 45ms, within P of 40ms.
			name: "recorded revocation delivered within the bound",
			edit: func(h *History) { addRecorded(h, 45*ms, true) },
		},
		{
			name: "recorded revocation applied after the bound while deciding",
			edit: func(h *History) { addRecorded(h, 120*ms, true) },
			want: []Property{RecordedDelivered},
		},
		{
			name: "recorded revocation never delivered",
			edit: func(h *History) {
				addRecorded(h, 0, false)
				h.Deciding = h.Deciding[:1] // no sample past the bound: only the stream tells
			},
			want: []Property{RecordedDelivered},
		},
		{
			name: "recorded revocation while NATS never came back is not bounded",
			edit: func(h *History) {
				addRecorded(h, 0, true)
				h.Reachable = nil
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := baseHistory()
			tt.edit(&h)
			vs, _ := Check(h, p)
			var got []Property
			for _, v := range vs {
				got = append(got, v.Property)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Check found %v, want %v; violations:", got, tt.want)
				for _, v := range vs {
					t.Logf("  %s", v)
				}
			}
		})
	}
}

// addRecorded adds to h a session revocation of s1 answered as recorded
// (never acknowledged) at 30ms, NATS reachable again at 40ms, applied by "a"
// at (when not zero), and in the stream at the end when stored.
func addRecorded(h *History, at time.Duration, stored bool) {
	h.Revocations = append(h.Revocations, Revocation{ID: "r2", Kind: KindSession, Value: "s1", Start: 28 * ms, End: 30 * ms, Recorded: true, Attempts: 1})
	h.Reachable = append(h.Reachable, 40*ms)
	if at != 0 {
		h.Applied = append(h.Applied, Applied{Replica: "a", Stored: ev("r2", KindSession, "s1"), At: at})
	}
	if stored {
		h.Stream = append(h.Stream, ev("r2", KindSession, "s1"))
	}
}

func TestCheckStats(t *testing.T) {
	vs, st := Check(baseHistory(), 50*ms)
	if len(vs) != 0 {
		t.Fatalf("violations in the base history: %v", vs)
	}
	want := Stats{Revocations: 1, Attempts: 1, Requests: 2, Accepted: 1, Revoked: 1, MaxLag: 5 * ms, P99Lag: 5 * ms}
	if st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

func TestRecorder(t *testing.T) {
	rec := NewRecorder()
	rec.Started("a")
	rec.Ready("a", rec.Now())
	rec.Ready("a", time.Hour) // only the first counts
	rec.Applied("a", ev("r1", KindToken, "j1"), rec.Since(time.Now()))
	rec.Stopped("a")
	h := rec.History()
	if len(h.Incarnations) != 1 || h.Incarnations[0].Ready < 0 || h.Incarnations[0].Ready >= time.Hour || h.Incarnations[0].Stop < h.Incarnations[0].Ready {
		t.Errorf("incarnation = %+v", h.Incarnations)
	}
	if len(h.Applied) != 1 || h.Applied[0].At < h.Incarnations[0].Ready {
		t.Errorf("applied = %+v", h.Applied)
	}
	if n, m := rec.AppliedBy("a"), rec.AppliedBy("b"); n != 1 || m != 0 {
		t.Errorf("AppliedBy a, b = %d, %d; want 1, 0", n, m)
	}
}

// TestCheckUnacknowledgedSupersedes: a revocation still in flight when the
// workload stopped may replace an acknowledged one of the same value in
// the stream; the client never learnt its id. That is not a loss; an
// unknown event of the same value with no such attempt is.
func TestCheckUnacknowledgedSupersedes(t *testing.T) {
	h := History{
		Revocations: []Revocation{
			{ID: "a", Kind: KindSubject, Value: "u", Start: 0, End: 10 * ms, Acked: true},
			{Kind: KindSubject, Value: "u", Start: 20 * ms, End: 30 * ms},
		},
		Incarnations: []Incarnation{{Name: "r0", Start: 0, Ready: ms, Stop: -1}},
		Applied:      []Applied{{Replica: "r0", Stored: ev("x", KindSubject, "u"), At: 25 * ms}},
		Deciding:     []Deciding{{Replica: "r0", At: 2 * time.Second}},
		Stream:       []Stored{ev("x", KindSubject, "u")},
	}
	if vs, _ := Check(h, time.Second); len(vs) != 0 {
		t.Fatalf("violations %v, want none", vs)
	}
	// Without the unacknowledged attempt, x cannot stand in for a.
	h.Revocations = h.Revocations[:1]
	vs, _ := Check(h, time.Second)
	for _, want := range []Property{EnforcedInBound, NothingLost} {
		if !slices.ContainsFunc(vs, func(v Violation) bool { return v.Property == want }) {
			t.Errorf("violations %v, want %v", vs, want)
		}
	}
	// Nor can an event of another subject.
	h.Revocations = append(h.Revocations, Revocation{Kind: KindSubject, Value: "u", Start: 20 * ms, End: 30 * ms})
	h.Stream = []Stored{ev("x", KindSubject, "v")}
	vs, _ = Check(h, time.Second)
	if !slices.ContainsFunc(vs, func(v Violation) bool { return v.Property == NothingLost && v.Replica == "" }) {
		t.Fatalf("violations %v, want NothingLost in the stream", vs)
	}
}

// TestCheckConcurrentDuplicate: two concurrent revocations of one subject
// may be stored as one event, the other acknowledged as its duplicate;
// that is not a loss. One that finished earlier cannot stand in.
func TestCheckConcurrentDuplicate(t *testing.T) {
	h := History{
		Revocations: []Revocation{
			{ID: "a", Kind: KindSubject, Value: "u", Start: 0, End: 10 * time.Millisecond, Acked: true},
			{ID: "b", Kind: KindSubject, Value: "u", Start: 5 * time.Millisecond, End: 12 * time.Millisecond, Acked: true},
		},
		Incarnations: []Incarnation{{Name: "r0", Start: 0, Ready: time.Millisecond, Stop: -1}},
		Applied:      []Applied{{Replica: "r0", Stored: ev("a", KindSubject, "u"), At: 8 * ms}},
		Stream:       []Stored{ev("a", KindSubject, "u")},
	}
	if vs, _ := Check(h, time.Second); len(vs) != 0 {
		t.Fatalf("violations %v, want none", vs)
	}
	// b starting after a finished: a cannot stand in for b.
	h.Revocations[1].Start = 11 * time.Millisecond
	vs, _ := Check(h, time.Second)
	if !slices.ContainsFunc(vs, func(v Violation) bool { return v.Property == NothingLost && v.Revocation == "b" }) {
		t.Fatalf("violations %v, want NothingLost for b", vs)
	}
}

// TestMaxUnavailable: the longest run of 503s of one incarnation, ended by
// its next acceptance (a refusal of a revoked token does not end it); runs
// of different replicas do not join.
func TestMaxUnavailable(t *testing.T) {
	q := func(replica string, start time.Duration, o Outcome) Request {
		return Request{Replica: replica, Start: start, End: start + ms, Outcome: o}
	}
	tests := []struct {
		name string
		qs   []Request
		want time.Duration
	}{
		{"none", []Request{q("a", 0, Accepted), q("a", 10*ms, Revoked)}, 0},
		{"ended by an acceptance", []Request{q("a", 0, Accepted), q("a", 10*ms, Unavailable), q("a", 20*ms, Revoked), q("a", 30*ms, Unavailable), q("a", 50*ms, Accepted)}, 40 * ms},
		{"to the end", []Request{q("a", 10*ms, Unavailable), q("a", 30*ms, Unavailable)}, 21 * ms},
		{"per replica, unsorted", []Request{q("b", 40*ms, Accepted), q("a", 10*ms, Unavailable), q("b", 0, Unavailable), q("a", 15*ms, Accepted)}, 40 * ms},
	}
	for _, tc := range tests {
		if got := maxUnavailable(tc.qs); got != tc.want {
			t.Errorf("%s: maxUnavailable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
