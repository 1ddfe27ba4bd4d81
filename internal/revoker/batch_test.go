package revoker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// TestBatch: POST /v1/revocations/batch records and publishes each valid
// revocation as a single request would, refuses each invalid one with the
// single request's error, and answers them all in order; a body that is
// not such a list is a 400 and records nothing.
func TestBatch(t *testing.T) {
	e := newEnv(t, nil)
	svc := e.service(t)
	ctx := context.Background()
	post := func(body string, hdr map[string]string) answer {
		t.Helper()
		h := map[string]string{"Authorization": "Bearer " + testCredential}
		for k, v := range hdr {
			h[k] = v
		}
		return e.do(t, http.MethodPost, "/v1/revocations/batch", "application/json", []byte(body), h)
	}
	soon := time.Now().Add(10 * time.Minute).Unix()
	tok := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-b1"})
	carol := e.iss.Token(t, verifiertest.TokenOptions{Subject: "carol", IssuedAt: time.Now().Add(-time.Second)})
	a := post(fmt.Sprintf(`{"revocations":[
		{"type":"session","sid":"s-b1"},
		{"type":"subject","sub":"carol","reason":"offboarded"},
		{"type":"token","jti":"j-b3","exp":%d},
		{"type":"user","sub":"x"},
		{"type":"session","sid":"s-b5","admin":true},
		{"type":"scope","claim":"tenant","value":"acme"}
	]}`, soon), nil)
	if a.status != http.StatusOK {
		t.Fatalf("batch: %d %s", a.status, a.body)
	}
	var got BatchAnswer
	if err := json.Unmarshal(a.body, &got); err != nil || len(got.Results) != 6 {
		t.Fatalf("answer %s: %v", a.body, err)
	}
	for i, want := range []int{201, 201, 201, 400, 400, 400} {
		r := got.Results[i]
		if r.Status != want || (want == 201) != (r.ID != "" && r.Seq != 0) || (want == 400) != (r.Error == "invalid_request") {
			t.Errorf("item %d: %+v, want status %d", i, r, want)
		}
	}
	if !strings.Contains(got.Results[3].Description, `unknown "type"`) || !strings.Contains(got.Results[5].Description, "not an epoch scope") {
		t.Errorf("the refused items say %q and %q", got.Results[3].Description, got.Results[5].Description)
	}
	for what, raw := range map[string]string{"the session's token": tok, "carol's token": carol} {
		eventually.True(t, 5*time.Second, what+" refused", func() bool {
			_, err := svc.Verify(ctx, raw)
			return errors.Is(err, verifier.ErrInvalidToken)
		})
	}

	keys, seq := e.dbsize(t), e.lastSeq(t)
	many := `{"revocations":[` + strings.Repeat(`{"type":"session","sid":"s"},`, MaxBatch) + `{"type":"session","sid":"s"}]}`
	for name, tt := range map[string]struct {
		body   string
		hdr    map[string]string
		status int
	}{
		"empty list":         {`{"revocations":[]}`, nil, 400},
		"no list":            {`{}`, nil, 400},
		"1,001 revocations":  {many, nil, 400},
		"malformed":          {`{"revocations":[`, nil, 400},
		"an unknown field":   {`{"revocations":[{"type":"session","sid":"s"}],"all":true}`, nil, 400},
		"an Idempotency-Key": {`{"revocations":[{"type":"session","sid":"s"}]}`, map[string]string{"Idempotency-Key": "k"}, 400},
		"no credential":      {`{"revocations":[{"type":"session","sid":"s"}]}`, map[string]string{"Authorization": ""}, 401},
	} {
		if a := post(tt.body, tt.hdr); a.status != tt.status {
			t.Errorf("%s: %d %.200s, want %d", name, a.status, a.body, tt.status)
		}
	}
	if n, s := e.dbsize(t), e.lastSeq(t); n != keys || s != seq {
		t.Errorf("refused batches changed Redis (%d → %d keys) or the stream (seq %d → %d)", keys, n, seq, s)
	}
}
