// Package hydra runs a real Ory Hydra (built by interop/build-hydra.sh) on
// loopback for tests, with a login/consent/logout UI that accepts every
// challenge, and drives the OpenID Connect flows over HTTP like a browser.
//
// Hydra runs as `hydra serve all --dev` with DSN=memory; access tokens are
// JWTs carrying the login session id at top level as "sid".
package hydra

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Version is the Hydra release the harness is written against.
const Version = "v2.3.0"

// Hydra is one running Hydra process and the UI it redirects to.
type Hydra struct {
	publicURL string // http://127.0.0.1:PORT, no trailing slash
	adminURL  string
	issuer    string // publicURL + "/", as Hydra writes it into "iss"
	logPath   string
	ui        *ui
	http      *http.Client // for the admin API and back-channel calls of the harness
}

// Option changes the Hydra configuration written by Start.
type Option func(cfg map[string]any)

// WithConfig sets a configuration key, dotted as in Hydra's docs
// ("ttl.access_token", "log.level"), overriding the harness default.
func WithConfig(key string, value any) Option {
	return func(cfg map[string]any) { setPath(cfg, key, value) }
}

// Binary returns the Hydra binary the harness runs: $HYDRA_BIN, or
// interop/.bin/hydra as written by build-hydra.sh.
func Binary() string {
	if b := os.Getenv("HYDRA_BIN"); b != "" {
		return b
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", ".bin", "hydra")
}

// Start runs Hydra for the duration of the test and waits until both its
// public and admin ports answer /health/ready and its signing keys exist.
func Start(t testing.TB, opts ...Option) *Hydra {
	t.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("hydra binary %s: %v (build it with `make interop-hydra` or interop/build-hydra.sh)", bin, err)
	}

	h := &Hydra{http: &http.Client{Timeout: 30 * time.Second}}
	h.ui = startUI(t, h)

	// A port picked free can be taken before Hydra binds it; then try again.
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		err := h.start(t, bin, attempt, opts)
		if err == nil {
			return h
		}
		lastErr = err
		if !errors.Is(err, errAddrInUse) {
			break
		}
	}
	t.Fatalf("starting hydra: %v", lastErr)
	return nil
}

var errAddrInUse = errors.New("address already in use")

func (h *Hydra) start(t testing.TB, bin string, attempt int, opts []Option) error {
	t.Helper()
	publicPort, adminPort := freePort(t), freePort(t)
	h.publicURL = "http://127.0.0.1:" + strconv.Itoa(publicPort)
	h.adminURL = "http://127.0.0.1:" + strconv.Itoa(adminPort)
	h.issuer = h.publicURL + "/"

	cfg := map[string]any{
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": publicPort},
			"admin":  map[string]any{"host": "127.0.0.1", "port": adminPort},
		},
		"urls": map[string]any{
			// public and admin are set so that the redirects Hydra builds name
			// 127.0.0.1 (its fallback is "localhost", another cookie host).
			"self": map[string]any{
				"issuer": h.issuer,
				"public": h.publicURL + "/",
				"admin":  h.adminURL + "/",
			},
			"login":                h.ui.url + "/login",
			"consent":              h.ui.url + "/consent",
			"logout":               h.ui.url + "/logout",
			"error":                h.ui.url + "/error",
			"post_logout_redirect": h.ui.url + "/logged-out",
		},
		"secrets":    map[string]any{"system": []string{randomHex(t, 32)}},
		"strategies": map[string]any{"access_token": "jwt"},
		"oauth2": map[string]any{
			// Lets the consent session's access_token.sid out of "ext" to top level.
			"allowed_top_level_claims": []string{"sid"},
			"expose_internal_errors":   true,
		},
		"log": map[string]any{"level": "info", "format": "text", "leak_sensitive_values": true},
	}
	for _, o := range opts {
		o(cfg)
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "hydra.json")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return err
	}
	h.logPath = filepath.Join(dir, fmt.Sprintf("hydra-%d.log", attempt))
	logFile, err := os.Create(h.logPath)
	if err != nil {
		return err
	}

	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "DSN=memory")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("exec %s: %w", bin, err)
	}
	// done closes when the process has exited; waitErr is set before that.
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); logFile.Close(); close(done) }()

	stop := func() {
		select {
		case <-done:
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	exited := func() error { <-done; return waitErr }

	if err := h.waitReady(done, exited, 2*time.Minute); err != nil {
		stop()
		logs, _ := os.ReadFile(h.logPath)
		if bytes.Contains(logs, []byte("address already in use")) {
			return fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return fmt.Errorf("%v\n--- hydra log %s (migrations left out) ---\n%s", err, h.logPath, tail(withoutMigrations(logs), 64<<10))
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			logs, _ := os.ReadFile(h.logPath)
			t.Logf("--- hydra log %s (migrations left out) ---\n%s", h.logPath, tail(withoutMigrations(logs), 256<<10))
		}
	})
	return nil
}

// waitReady polls the health endpoints until both are ready, the process
// exits, or the deadline passes; then the JWKS, so that Hydra has generated
// its RSA signing keys before a test starts timing anything.
func (h *Hydra) waitReady(done <-chan struct{}, exited func() error, within time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	ready := func(u string) bool {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u+"/health/ready", nil)
		res, err := h.http.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}
	for !ready(h.adminURL) || !ready(h.publicURL) {
		select {
		case <-done:
			return fmt.Errorf("hydra exited before it was ready: %v", exited())
		case <-ctx.Done():
			return fmt.Errorf("hydra not ready on %s and %s within %s", h.publicURL, h.adminURL, within)
		case <-tick.C:
		}
	}
	// The first JWKS request generates the two RSA key sets. That can outlast
	// Hydra's 10s write timeout on a loaded machine (the connection closes
	// with EOF, the keys are stored anyway), so poll until the keys are there.
	for {
		var jwks struct {
			Keys []json.RawMessage `json:"keys"`
		}
		err := h.getJSON(ctx, h.JWKSURL(), &jwks)
		if err == nil && len(jwks.Keys) >= 2 {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("hydra exited before its JWKS was ready: %v", exited())
		case <-ctx.Done():
			return fmt.Errorf("hydra's JWKS not ready within %s (last: %d keys, %v)", within, len(jwks.Keys), err)
		case <-tick.C:
		}
	}
}

// Issuer is the "iss" Hydra puts in its tokens: http://127.0.0.1:PORT/.
func (h *Hydra) Issuer() string { return h.issuer }

// PublicURL is the base of Hydra's public API, without a trailing slash.
func (h *Hydra) PublicURL() string { return h.publicURL }

// AdminURL is the base of Hydra's admin API, without a trailing slash.
func (h *Hydra) AdminURL() string { return h.adminURL }

// JWKSURL serves the public keys of both the ID token and access token sets.
func (h *Hydra) JWKSURL() string { return h.publicURL + "/.well-known/jwks.json" }

// DiscoveryURL is the OpenID Connect discovery document.
func (h *Hydra) DiscoveryURL() string { return h.publicURL + "/.well-known/openid-configuration" }

// TokenURL is the OAuth 2.0 token endpoint.
func (h *Hydra) TokenURL() string { return h.publicURL + "/oauth2/token" }

// LogPath is the file Hydra's stdout and stderr go to.
func (h *Hydra) LogPath() string { return h.logPath }

// Client is an OAuth 2.0 client registered in Hydra.
type Client struct {
	ID                    string
	Secret                string
	RedirectURI           string
	PostLogoutRedirectURI string
	BackchannelLogoutURI  string
	// Audience is what the client may ask access tokens to carry in aud;
	// Login asks for all of it.
	Audience []string
}

// RegisterClient creates a confidential client (client_secret_basic) with the
// authorization_code and refresh_token grants, scopes openid and offline, and
// the given back-channel logout URI (none if "") with
// backchannel_logout_session_required, and the audience its access tokens
// may carry (Hydra's default is none: "aud":[]).
func (h *Hydra) RegisterClient(t testing.TB, backchannelLogoutURL string, audience ...string) Client {
	t.Helper()
	c := Client{
		RedirectURI:           h.ui.url + "/callback",
		PostLogoutRedirectURI: h.ui.url + "/logged-out",
		BackchannelLogoutURI:  backchannelLogoutURL,
		Audience:              audience,
	}
	body := map[string]any{
		"client_name":                "jwtrevoke-interop",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      "openid offline",
		"redirect_uris":              []string{c.RedirectURI},
		"post_logout_redirect_uris":  []string{c.PostLogoutRedirectURI},
		"token_endpoint_auth_method": "client_secret_basic",
	}
	if len(audience) > 0 {
		body["audience"] = audience
	}
	if backchannelLogoutURL != "" {
		body["backchannel_logout_uri"] = backchannelLogoutURL
		body["backchannel_logout_session_required"] = true
	}
	var out struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := h.adminJSON(context.Background(), http.MethodPost, "/admin/clients", body, &out); err != nil {
		t.Fatalf("registering client: %v", err)
	}
	if out.ClientID == "" || out.ClientSecret == "" {
		t.Fatalf("registering client: no id or secret in the answer")
	}
	c.ID, c.Secret = out.ClientID, out.ClientSecret
	return c
}

// RevokeLoginSession ends a login session through the admin API
// (DELETE /admin/oauth2/auth/sessions/login?sid=), which also sends the
// back-channel logout tokens, without a browser.
func (h *Hydra) RevokeLoginSession(t testing.TB, sid string) {
	t.Helper()
	if err := h.adminJSON(context.Background(), http.MethodDelete,
		"/admin/oauth2/auth/sessions/login?sid="+url.QueryEscape(sid), nil, nil); err != nil {
		t.Fatalf("revoking login session %s: %v", sid, err)
	}
}

// adminJSON sends body as JSON to the admin API and decodes a 2xx answer
// into out (when out is not nil).
func (h *Hydra) adminJSON(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.adminURL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return h.do(req, out)
}

func (h *Hydra) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	return h.do(req, out)
}

func (h *Hydra) do(req *http.Request, out any) error {
	res, err := h.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, res.Status, bytes.TrimSpace(raw))
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decoding %q: %w", req.Method, req.URL.Path, raw, err)
	}
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// setPath sets a dotted key in a nested map, creating maps on the way.
func setPath(m map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append([]byte("...\n"), b[len(b)-n:]...)
}

// withoutMigrations drops the ~200 lines per start that DSN=memory's
// migrations log, which bury everything else.
func withoutMigrations(logs []byte) []byte {
	var out []byte
	for line := range bytes.Lines(logs) {
		if !bytes.Contains(line, []byte("migration_file=")) && !bytes.Contains(line, []byte(`"migration_file"`)) {
			out = append(out, line...)
		}
	}
	return out
}
