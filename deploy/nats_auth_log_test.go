package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
)

// lockedBuffer collects a process's output for a test.
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

// TestBinariesLogNATSAuthFailure: every binary that connects to NATS
// (revoker, example), started with credentials
// the NATS server refuses logs the same line — an authentication failure
// with the URL, password redacted — and keeps running (retrying) rather
// than exiting or going silent.
func TestBinariesLogNATSAuthFailure(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Username: "svc", Password: "right-password"})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	natsURL := strings.Replace(ns.ClientURL(), "nats://", "nats://svc:wrong-password@", 1)
	redacted := strings.Replace(ns.ClientURL(), "nats://", "nats://svc:xxxxx@", 1)

	dir := buildBinaries(t)
	tests := []struct {
		bin string
		env []string
	}{
		{bin: "revoker", env: []string{"JWTREVOKE_ISSUER=https://auth.test", "JWTREVOKE_AUDIENCE=api",
			"JWTREVOKE_JWKS_URL=http://127.0.0.1:1/.well-known/jwks.json", "JWTREVOKE_SERVICE_CREDENTIALS=service-credential-0123"}},
		{bin: "example", env: nil},
	}
	for _, tt := range tests {
		t.Run(tt.bin, func(t *testing.T) {
			var out lockedBuffer
			cmd := exec.CommandContext(testContext(t, 60*time.Second), filepath.Join(dir, tt.bin))
			cmd.Env = append([]string{"JWTREVOKE_LISTEN=127.0.0.1:0", "JWTREVOKE_NATS_URL=" + natsURL,
				"JWTREVOKE_REDIS_ADDRS=127.0.0.1:1"}, tt.env...)
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			var line map[string]any
			eventually.True(t, 20*time.Second, tt.bin+" to log the authentication failure", func() bool {
				line = findLog(out.String(), "nats: authentication failed")
				return line != nil
			})
			if line["level"] != "ERROR" || line["url"] != redacted {
				t.Fatalf("%s: %v, want level ERROR and url %s", tt.bin, line, redacted)
			}
			if strings.Contains(out.String(), "wrong-password") {
				t.Fatalf("%s logged the password:\n%s", tt.bin, out.String())
			}
			select {
			case err := <-exited:
				t.Fatalf("%s exited (%v) instead of retrying:\n%s", tt.bin, err, out.String())
			default:
			}
		})
	}
}

// findLog returns the first JSON log line whose msg starts with msg.
func findLog(out, msg string) map[string]any {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if s, _ := m["msg"].(string); strings.HasPrefix(s, msg) {
			return m
		}
	}
	return nil
}
