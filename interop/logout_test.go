package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
	"github.com/jwtrevoke/jwtrevoke/interop/hydra"
	"github.com/jwtrevoke/jwtrevoke/interop/system"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// replicas is how many example replicas trust Hydra in the end-to-end test.
const replicas = 3

// credential is the revoker's service credential in these tests.
const credential = "interop-service-credential-0123456789"

// jwtrevoke is the revoker and the example replicas, as processes built
// from this checkout, trusting one Hydra.
type jwtrevoke struct {
	revokerURL string
	replicas   []string // example replica base URLs
	revoker    *system.Proc
	// startRevoker starts a revoker (another one after a Stop) and waits
	// until it is ready.
	startRevoker func() *system.Proc
}

// startJWTRevoke runs NATS (embedded), redis-server, the revoker on
// revokerPort taking Hydra's back-channel logout tokens for client, and
// the example replicas trusting Hydra's tokens for audience "api", from
// one providers file; it returns once all are ready.
func startJWTRevoke(t *testing.T, h *hydra.Hydra, c hydra.Client, revokerPort int) *jwtrevoke {
	t.Helper()
	bin := system.Binaries(t)
	nats := verifiertest.RunJetStream(t)
	redis := redistest.Run(t)
	own := verifiertest.NewIssuer(t) // the own issuer: its keys only, no token of it is used

	file := map[string]any{"providers": []map[string]any{{
		"name":               "hydra",
		"issuer":             h.Issuer(),
		"discovery":          true,
		"audiences":          []string{"api"},
		"algorithms":         []string{"RS256"},
		"backchannel_logout": map[string]any{"client_id": c.ID},
	}}}
	raw, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	providersFile := filepath.Join(t.TempDir(), "providers.json")
	if err := os.WriteFile(providersFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	common := map[string]string{
		"JWTREVOKE_NATS_URL":   nats.URL(),
		"JWTREVOKE_ISSUER":     own.Issuer(),
		"JWTREVOKE_AUDIENCE":   own.Audience(),
		"JWTREVOKE_ALGORITHMS": own.Algorithm(),
		"JWTREVOKE_JWKS_URL":   own.JWKSURL(),
		"JWTREVOKE_PROVIDERS":  providersFile,
		"JWTREVOKE_LOG_FORMAT": "text",
		// Hydra's access tokens name their client in client_id.
		"JWTREVOKE_EPOCH_SCOPES": "client_id",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range common {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	j := &jwtrevoke{revokerURL: "http://" + system.Addr(revokerPort)}
	starts := 0
	j.startRevoker = func() *system.Proc {
		starts++
		p := system.Start(t, "revoker-"+strconv.Itoa(starts), filepath.Join(bin, "revoker"), with(map[string]string{
			"JWTREVOKE_LISTEN":              system.Addr(revokerPort),
			"JWTREVOKE_REDIS_ADDRS":         redis.Addr(),
			"JWTREVOKE_SERVICE_CREDENTIALS": credential,
		}))
		p.WaitReady(t, j.revokerURL+"/readyz", 30*time.Second)
		return p
	}
	j.revoker = j.startRevoker()
	for i := range replicas {
		port := system.FreePort(t)
		p := system.Start(t, "example-"+strconv.Itoa(i), filepath.Join(bin, "example"), with(map[string]string{
			"JWTREVOKE_LISTEN": system.Addr(port),
		}))
		u := "http://" + system.Addr(port)
		p.WaitReady(t, u+"/readyz", 30*time.Second)
		j.replicas = append(j.replicas, u)
	}
	return j
}

// loggedIn starts Hydra with a client whose back-channel logout URL is the
// revoker's, jwtrevoke trusting it, and logs alice in; her token is
// accepted by every replica.
func loggedIn(t *testing.T) (*hydra.Hydra, hydra.Client, *jwtrevoke, hydra.Tokens) {
	t.Helper()
	// Hydra's default access-token lifetime is 1h, and its exp can lie
	// 3601 s after iat: more than the verifiers' default
	// -max-token-lifetime (1h), so such tokens would be refused.
	h := hydra.Start(t, hydra.WithConfig("ttl.access_token", "15m"))
	revokerPort := system.FreePort(t)
	c := h.RegisterClient(t, "http://"+system.Addr(revokerPort)+"/v1/providers/hydra/backchannel-logout", "api")
	j := startJWTRevoke(t, h, c, revokerPort)
	tok := h.Login(t, c, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range j.replicas {
		if st, err := me(ctx, r, tok.AccessToken); st != http.StatusOK {
			t.Fatalf("before the logout, %s answered %d (%v), want 200", r, st, err)
		}
	}
	return h, c, j, tok
}

// me is GET /v1/me on a replica with the token: the status, and the
// reason of a 401 in the error.
func me(ctx context.Context, replica, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, replica+"/v1/me", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return resp.StatusCode, fmt.Errorf("refused: %s", resp.Header.Get("WWW-Authenticate"))
	}
	return resp.StatusCode, nil
}

// TestHydraLogoutRefusedEverywhere is the whole path with a real provider:
// a user logs in at Hydra (authorization-code flow, login and consent
// accepted through its admin API), the access token is accepted by every
// example replica trusting Hydra, the user logs out at Hydra (RP-initiated
// logout in the same browser), Hydra posts its back-channel logout token
// to the revoker, and every replica refuses the same token within a
// second. The figures are logged: logout start → refused, per replica.
func TestHydraLogoutRefusedEverywhere(t *testing.T) {
	h, c, j, tok := loggedIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A second login of another user: its token must survive alice's logout.
	other := h.Login(t, c, "bob")

	start := time.Now()
	wait := pollRefused(ctx, j, tok.AccessToken, start, 5*time.Second)
	h.Logout(t, c, tok)
	browser := time.Since(start)
	refused := wait()

	worst := report(t, j, refused, "provider logout → refused", browser)
	if worst > time.Second {
		t.Errorf("slowest replica refused the token %s after the logout, want within 1 s", worst)
	}
	for _, r := range j.replicas {
		if st, err := me(ctx, r, other.AccessToken); err != nil || st != http.StatusOK {
			t.Errorf("bob's token on %s after alice's logout: %d (%v), want 200", r, st, err)
		}
	}
	// Hydra's logout leaves the refresh token working (observed with
	// v2.3.0); the access token it mints carries the ended session's sid,
	// so every replica refuses that one too.
	if ref, err := h.Refresh(c, tok.RefreshToken); err != nil {
		t.Logf("refresh after the logout refused by Hydra: %v", err)
	} else {
		t.Logf("refresh after the logout: Hydra minted a new access token")
		for _, r := range j.replicas {
			if st, err := me(ctx, r, ref.AccessToken); st != http.StatusUnauthorized || err == nil || !strings.Contains(err.Error(), "revoked_session") {
				t.Errorf("the access token refreshed after the logout on %s: %d (%v), want 401 revoked_session", r, st, err)
			}
		}
	}
	if got := metric(t, j.revokerURL, `jwtrevoke_revoker_provider_signals_total{`, `outcome="accepted"`); got != 1 {
		t.Errorf("accepted back-channel logouts on the revoker: %v, want 1", got)
	}
}

// pollRefused polls every replica from start until it refuses token, for
// at most within; wait returns how long after start each one did (0: not
// within).
func pollRefused(ctx context.Context, j *jwtrevoke, token string, start time.Time, within time.Duration) (wait func() []time.Duration) {
	refused := make([]time.Duration, len(j.replicas))
	var wg sync.WaitGroup
	for i, r := range j.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithDeadline(ctx, start.Add(within))
			defer cancel()
			// A request every 2 ms: the figure is as fine as that.
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				if st, _ := me(ctx, r, token); st == http.StatusUnauthorized {
					refused[i] = time.Since(start)
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	return func() []time.Duration { wg.Wait(); return refused }
}

// report fails the test for a replica that never refused, logs the figures
// sorted (with browser, the provider's own part, when not 0), and returns
// the slowest.
func report(t *testing.T, j *jwtrevoke, refused []time.Duration, what string, browser time.Duration) time.Duration {
	t.Helper()
	var worst time.Duration
	var got []time.Duration
	for i, d := range refused {
		if d == 0 {
			t.Errorf("replica %d (%s) still accepts the token", i, j.replicas[i])
			continue
		}
		worst = max(worst, d)
		got = append(got, d)
	}
	slices.Sort(got)
	figures := make([]string, len(got))
	for i, d := range got {
		figures[i] = d.Round(100 * time.Microsecond).String()
	}
	msg := fmt.Sprintf("%s on each of %d replicas: %s", what, len(j.replicas), strings.Join(figures, ", "))
	if browser > 0 {
		msg += fmt.Sprintf(" (the browser's logout flow itself took %s)", browser.Round(100*time.Microsecond))
	}
	t.Log(msg)
	return worst
}

// TestHydraRetryAfterRevokerOutage: the revoker is down when the user logs
// out at Hydra; Hydra's first delivery fails, its retry (the identical
// logout token, about a second later) reaches a revoker started again on
// the same address, and every replica refuses the token. No logout is lost
// to a short outage of the revoker.
func TestHydraRetryAfterRevokerOutage(t *testing.T) {
	h, c, j, tok := loggedIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	j.revoker.Stop()
	start := time.Now()
	wait := pollRefused(ctx, j, tok.AccessToken, start, 30*time.Second)
	h.Logout(t, c, tok)
	browser := time.Since(start)
	j.revoker = j.startRevoker()
	restarted := time.Since(start)
	refused := wait()
	worst := report(t, j, refused, "provider logout with the revoker down → refused", browser)
	t.Logf("the revoker was ready again %s after the logout started; slowest replica %s", restarted.Round(time.Millisecond), worst.Round(time.Millisecond))
	if got := metric(t, j.revokerURL, `jwtrevoke_revoker_provider_signals_total{`, `outcome="accepted"`); got != 1 {
		t.Errorf("accepted back-channel logouts on the restarted revoker: %v, want 1", got)
	}
}

// metric sums the samples of a metric whose line starts with prefix and
// contains every label in labels, off url's /metrics.
func metric(t *testing.T, base, prefix string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(name, prefix) {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(name, l)
		}
		if all {
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			sum += f
		}
	}
	return sum
}
