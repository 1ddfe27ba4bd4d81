package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jwtrevoke/jwtrevoke/internal/devmode"
	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// TestCLI runs the command against the whole system in dev mode: a
// revocation that waits, the fleet as a table and as JSON, and the exit
// statuses a script relies on — 2 for bad usage, 1 for a refused
// revocation, 3 when a replica has not enforced it within the timeout.
func TestCLI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sys, err := devmode.Start(ctx, devmode.Config{IssuerAddr: "127.0.0.1:0", RevokerAddr: "127.0.0.1:0",
		ExampleAddrs: []string{"127.0.0.1:0"}, AuthorizerAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	env := map[string]string{"JWTREVOKE_REVOKER_URL": sys.RevokerURL, "JWTREVOKE_REVOKER_CREDENTIAL": devmode.ServiceCredential,
		"JWTREVOKE_NATS_URL": sys.NATSURL}
	cli := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := run(ctx, args, func(k string) string { return env[k] }, &out, &errs)
		return code, out.String(), errs.String()
	}

	eventually.True(t, 10*time.Second, "two replicas listed", func() bool {
		_, out, _ := cli("-o", "json", "replicas")
		var r revoker.Replicas
		return json.Unmarshal([]byte(out), &r) == nil && len(r.Replicas) == 2 && r.Replicas[0].Deciding && r.Replicas[1].Deciding
	})
	code, out, errs := cli("replicas")
	if code != 0 || !strings.Contains(out, "example-0") || !strings.Contains(out, "verifierd") || !strings.HasPrefix(out, "ID ") {
		t.Errorf("replicas: exit %d\n%s%s", code, out, errs)
	}

	code, out, errs = cli("revoke", "session", "s-cli", "-wait", "-reason", "support ticket 7")
	if code != 0 || !strings.Contains(out, "revoked: session s-cli") || !strings.Contains(out, "enforced by every deciding replica: 2 of 2") {
		t.Errorf("revoke -wait: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = cli("-o", "json", "revoke", "subject", "mallory")
	var res revoker.Result
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || res.Seq == 0 || res.Enforcement != nil {
		t.Errorf("revoke -o json: exit %d, %s (%v)", code, out, err)
	}

	for _, args := range [][]string{{}, {"revoke"}, {"revoke", "user", "x"}, {"revoke", "session"}, {"replicas", "extra"},
		{"-o", "yaml", "replicas"}, {"status", "now"}, {"tail", "extra"}, {"tail", "-n", "-1"}, {"revoke", "session", "s", "-wait", "-timeout", "soon"}} {
		if code, _, errs := cli(args...); code != 2 || !strings.Contains(errs, "usage:") {
			t.Errorf("%q: exit %d, want 2 with the usage\n%s", args, code, errs)
		}
	}
	// The stream, decoded, from the start: the two revocations above.
	code, out, errs = cli("tail", "-from-start", "-n", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[0], "\tsession\ts-cli\t-\tsupport ticket 7\tjwtrevoke-cli") ||
		!strings.Contains(lines[1], "\tsubject\tmallory\t") {
		t.Errorf("tail: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = cli("-o", "json", "tail", "-from-start", "-n", "1")
	var line tailLine
	if err := json.Unmarshal([]byte(out), &line); code != 0 || err != nil || line.Seq == 0 || line.Event.SID != "s-cli" {
		t.Errorf("tail -o json: exit %d, %s (%v)", code, out, err)
	}
	// A batch travels as one batch message: one line per event, all at
	// the message's sequence.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sys.RevokerURL+"/v1/revocations/batch",
		strings.NewReader(`{"revocations":[{"type":"session","sid":"s-b1"},{"type":"session","sid":"s-b2"},{"type":"session","sid":"s-b3"}]}`))
	req.Header.Set("Authorization", "Bearer "+devmode.ServiceCredential)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("batch: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	code, out, errs = cli("tail", "-from-start", "-n", "5")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 5 {
		t.Fatalf("tail after a batch: exit %d\n%s%s", code, out, errs)
	}
	seq, _, _ := strings.Cut(lines[2], "\t")
	for i, sid := range []string{"s-b1", "s-b2", "s-b3"} {
		if l := lines[2+i]; !strings.HasPrefix(l, seq+"\t") || !strings.Contains(l, "\tsession\t"+sid+"\t") {
			t.Errorf("tail line %d after a batch: %q, want session %s at seq %s", 3+i, l, sid, seq)
		}
	}
	eventually.True(t, 5*time.Second, "status: both replicas at the head", func() bool {
		code, out, _ := cli("-o", "json", "status")
		var st statusAnswer
		if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Stream.LastSeq == 0 || len(st.Replicas) != 2 {
			return false
		}
		return st.Replicas[0].Lag == 0 && st.Replicas[1].Lag == 0
	})
	if code, out, errs := cli("status"); code != 0 || !strings.HasPrefix(out, "stream REVOCATIONS: last seq ") || !strings.Contains(out, "LAG") {
		t.Errorf("status: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := cli("-nats-url", "nats://127.0.0.1:1", "tail", "-n", "1"); code != 1 {
		t.Errorf("tail without NATS: exit %d, want 1 (%s)", code, errs)
	}

	delete(env, "JWTREVOKE_REVOKER_CREDENTIAL")
	if code, _, errs := cli("replicas"); code != 2 || !strings.Contains(errs, "no service credential") {
		t.Errorf("no credential: exit %d %s", code, errs)
	}
	env["JWTREVOKE_REVOKER_CREDENTIAL"] = devmode.ServiceCredential
	if code, _, errs := cli("revoke", "subject", strings.Repeat("u", 300)); code != 1 || !strings.Contains(errs, "refused: ") {
		t.Errorf("a refused revocation: exit %d %s", code, errs)
	}

	// A replica that says it applied nothing: the wait times out, exit 3.
	nc, err := nats.Connect(sys.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stuck, _ := json.Marshal(events.Announcement{Version: 1, ID: "r-lagging", Ready: true, Deciding: true, Started: time.Now(), IntervalMs: 1000})
	if err := nc.Publish(events.AnnounceSubject(events.DefaultStreamName, "r-lagging"), stuck); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 5*time.Second, "the lagging replica listed", func() bool {
		_, out, _ := cli("replicas")
		return strings.Contains(out, "r-lagging")
	})
	code, out, errs = cli("revoke", "session", "s-cli-2", "-wait", "-timeout", "200ms")
	if code != 3 || !strings.Contains(out, "NOT enforced everywhere yet") || !strings.Contains(out, "pending: r-lagging") {
		t.Errorf("an incomplete wait: exit %d, want 3\n%s%s", code, out, errs)
	}
}
