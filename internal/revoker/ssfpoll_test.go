package revoker

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

const pollCredential = "ssf-poll-credential-0123456789"

// transmitter is the poll side of an SSF transmitter (RFC 8936): it holds
// SETs until they are acknowledged or refused, and records what every poll
// said.
type transmitter struct {
	*httptest.Server
	mu     sync.Mutex
	queue  map[string]string // jti → SET, not yet acknowledged
	acked  []string
	errs   map[string]pollSetError
	polls  int
	denied int // polls without the credential
}

func newTransmitter(t *testing.T) *transmitter {
	tr := &transmitter{queue: map[string]string{}, errs: map[string]pollSetError{}}
	tr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+pollCredential {
			tr.mu.Lock()
			tr.denied++
			tr.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var req pollRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.MaxEvents <= 0 {
			t.Errorf("transmitter: poll body: %v (%+v)", err, req)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tr.mu.Lock()
		tr.polls++
		for _, jti := range req.Ack {
			tr.acked = append(tr.acked, jti)
			delete(tr.queue, jti)
		}
		for jti, e := range req.SetErrs {
			tr.errs[jti] = e
			delete(tr.queue, jti)
		}
		ans := pollAnswer{Sets: map[string]string{}}
		for jti, set := range tr.queue {
			if len(ans.Sets) == req.MaxEvents {
				ans.MoreAvailable = true
				break
			}
			ans.Sets[jti] = set
		}
		tr.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ans)
	}))
	t.Cleanup(tr.Close)
	return tr
}

func (tr *transmitter) add(jti, set string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.queue[jti] = set
}

// state returns what the revoker has acknowledged and refused so far, and
// how many SETs wait.
func (tr *transmitter) state() (acked []string, errs map[string]pollSetError, waiting int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	e := make(map[string]pollSetError, len(tr.errs))
	for k, v := range tr.errs {
		e[k] = v
	}
	return append([]string(nil), tr.acked...), e, len(tr.queue)
}

// TestSSFPoll: the revoker polls a provider's stream (RFC 8936), records
// what each SET revokes, acknowledges it only once recorded, reports the
// SETs it refuses in setErrs with RFC 8935's codes, and leaves a SET it
// could not record (Redis down) for the transmitter to deliver again.
func TestSSFPoll(t *testing.T) {
	tr := newTransmitter(t)
	p := newProviderEnv(t, func(pr *Provider) {
		pr.EventsCredentials = nil // poll only: nothing is pushed
		pr.Poll = &Poll{URL: tr.URL + "/poll", Credential: pollCredential, MaxEvents: 2, Interval: 20 * time.Millisecond}
	})
	sub := func(s string) map[string]any { return map[string]any{"format": "iss_sub", "iss": idpIssuer, "sub": s} }
	alice := p.idp.Token(t, verifiertest.TokenOptions{Subject: "alice", IssuedAt: time.Now().Add(-time.Minute)})
	bob := p.idp.Token(t, verifiertest.TokenOptions{Subject: "bob", IssuedAt: time.Now().Add(-time.Minute)})
	tr.add("set-alice", p.idp.SET(t, verifiertest.SETOptions{Audience: idpAudience, EventType: riscAccountDisabled, SubjectID: sub("alice"), JTI: "set-alice"}))
	tr.add("set-bob", p.idp.SET(t, verifiertest.SETOptions{Audience: idpAudience, EventType: caepCredentialChange, SubjectID: sub("bob"), JTI: "set-bob"}))
	tr.add("set-weather", p.idp.SET(t, verifiertest.SETOptions{Audience: idpAudience, EventType: "https://example.test/weather", SubjectID: sub("x"), JTI: "set-weather"}))
	tr.add("set-other-aud", p.idp.SET(t, verifiertest.SETOptions{Audience: "https://other.example.test/", EventType: riscAccountDisabled, SubjectID: sub("carol"), JTI: "set-other-aud"}))

	p.refusedFor(t, "alice refused", alice, verifier.ErrSubjectRevoked)
	p.refusedFor(t, "bob refused", bob, verifier.ErrSubjectRevoked)
	eventually.True(t, 10*time.Second, "every SET acknowledged or refused", func() bool {
		acked, errs, waiting := tr.state()
		return waiting == 0 && len(acked) == 3 && len(errs) == 1
	})
	_, errs, _ := tr.state()
	if e := errs["set-other-aud"]; e.Err != setInvalidAudience {
		t.Errorf("setErrs of the SET to another receiver: %+v, want %s", e, setInvalidAudience)
	}

	// Redis down: the SET is neither acknowledged nor refused while it
	// cannot be recorded, and is taken once Redis is back.
	dave := p.idp.Token(t, verifiertest.TokenOptions{Subject: "dave", IssuedAt: time.Now().Add(-time.Minute)})
	p.redis.Stop()
	tr.add("set-dave", p.idp.SET(t, verifiertest.SETOptions{Audience: idpAudience, EventType: riscSessionsRevoked, SubjectID: sub("dave"), JTI: "set-dave"}))
	polls := func() int { tr.mu.Lock(); defer tr.mu.Unlock(); return tr.polls }
	start := polls()
	eventually.True(t, 10*time.Second, "three more polls with Redis down", func() bool { return polls() >= start+3 })
	if acked, errs, waiting := tr.state(); waiting != 1 || len(acked) != 3 || len(errs) != 1 {
		t.Fatalf("with Redis down: %d acknowledged, %d refused, %d waiting; want the SET left waiting", len(acked), len(errs), waiting)
	}
	p.redis.Restart(t)
	p.refusedFor(t, "dave refused after Redis came back", dave, verifier.ErrSubjectRevoked)
	eventually.True(t, 10*time.Second, "dave's SET acknowledged", func() bool {
		acked, _, waiting := tr.state()
		return waiting == 0 && len(acked) == 4
	})
	tr.mu.Lock()
	denied := tr.denied
	tr.mu.Unlock()
	if denied != 0 {
		t.Errorf("%d polls without the credential", denied)
	}
	if a := p.push(t, "x", ssfCredential); a.status != http.StatusNotFound {
		t.Errorf("push to a poll-only provider: %d, want 404", a.status)
	}
}
