package interop_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"
)

// revoke posts a revocation to the revoker with the service credential and
// fails the test unless it answers 201.
func revoke(t *testing.T, j *jwtrevoke, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, j.revokerURL+"/v1/revocations", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+credential)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("%s: %d, want 201", body, resp.StatusCode)
	}
}

// TestHydraClientAndIssuerLogout: epoch scopes on a real provider's
// tokens. A logout of Hydra's client (the client_id claim of its access
// tokens) refuses every token of that client issued so far on every
// replica, and a logout of Hydra as an issuer does it for all of its
// tokens; a user who logs in again afterwards is accepted each time.
func TestHydraClientAndIssuerLogout(t *testing.T) {
	h, c, j, tok := loggedIn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bob := h.Login(t, c, "bob")

	for _, step := range []struct{ what, body string }{
		{"client logout → refused", `{"type":"scope","claim":"client_id","value":"` + c.ID + `","iss":"` + h.Issuer() + `"}`},
		{"issuer logout → refused", `{"type":"issuer","iss":"` + h.Issuer() + `"}`},
	} {
		start := time.Now()
		wait := pollRefused(ctx, j, tok.AccessToken, start, 5*time.Second)
		revoke(t, j, step.body)
		if worst := report(t, j, wait(), step.what, 0); worst > time.Second {
			t.Errorf("%s: slowest replica %s, want within 1 s", step.what, worst)
		}
		for _, r := range j.replicas {
			if st, err := me(ctx, r, bob.AccessToken); st != http.StatusUnauthorized {
				t.Errorf("%s: bob's token of the same client on %s: %d (%v), want 401", step.what, r, st, err)
			}
		}
		// Logging in again gives a token issued after the epoch. Hydra's
		// iat is in whole seconds, so a token of the logout's own second
		// counts as issued at its start, not after the epoch, and is
		// refused: log in again, as a user would, until a login is
		// accepted, within the next second or two.
		deadline := time.Now().Add(3 * time.Second)
		for {
			tok = h.Login(t, c, "alice")
			if st, _ := me(ctx, j.replicas[0], tok.AccessToken); st == http.StatusOK || time.Now().After(deadline) {
				break
			}
		}
		for _, r := range j.replicas {
			if st, err := me(ctx, r, tok.AccessToken); st != http.StatusOK {
				t.Errorf("%s: a new login on %s: %d (%v), want 200", step.what, r, st, err)
			}
		}
		bob = h.Login(t, c, "bob")
	}
}
