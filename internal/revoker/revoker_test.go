package revoker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/internal/httpx"
	"github.com/jwtrevoke/jwtrevoke/internal/redistest"
	"github.com/jwtrevoke/jwtrevoke/internal/store"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

func TestNewRefusesBadConfig(t *testing.T) {
	good := func() Config {
		return Config{
			JetStream:   nil, // set below
			Store:       &store.Store{},
			Credentials: []string{testCredential},
			Issuer:      "https://issuer.test",
			Audiences:   []string{"api"},
			Algorithms:  []string{verifier.EdDSA},
			JWKSURL:     "http://127.0.0.1:1/jwks.json",
		}
	}
	ns := verifiertest.RunJetStream(t)
	_, js := ns.Connect(t)
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{name: "no JetStream", edit: func(c *Config) { c.JetStream = nil }},
		{name: "no Store", edit: func(c *Config) { c.Store = nil }},
		{name: "no credentials", edit: func(c *Config) { c.Credentials = nil }},
		{name: "short credential", edit: func(c *Config) { c.Credentials = []string{"short"} }},
		{name: "replicas 7", edit: func(c *Config) { c.Replicas = 7 }},
		{name: "negative leeway", edit: func(c *Config) { c.Leeway = -time.Second }},
		{name: "no issuer", edit: func(c *Config) { c.Issuer = "" }},
		{name: "no algorithms", edit: func(c *Config) { c.Algorithms = nil }},
		{name: "HS256", edit: func(c *Config) { c.Algorithms = []string{"HS256"} }},
		{name: "no key source", edit: func(c *Config) { c.JWKSURL = "" }},
		{name: "tiny MaxBody", edit: func(c *Config) { c.MaxBody = 10 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good()
			cfg.JetStream = js
			tt.edit(&cfg)
			s, err := New(cfg)
			if err == nil {
				s.Close()
				t.Fatal("New accepted a bad config")
			}
		})
	}
	cfg := good()
	cfg.JetStream = js
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New refused a good config: %v", err)
	}
	s.Close()
}

// TestRevokeEachType revokes one of each type through the Client and checks
// the answer, the stream, the Redis record and a service's verifier.
func TestRevokeEachType(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	svc := e.service(t)
	exp := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	expF := float64(exp.Unix())

	tests := []struct {
		name string
		// setup mints the token that the revocation must kill and returns
		// the request.
		setup    func(t *testing.T) (tok string, req Request)
		kind     events.Kind
		value    func(req Request, tok string) string
		query    func(req Request) store.Query
		wantErr  error
		checkEvt func(t *testing.T, ev events.Event)
	}{
		{
			name: "token by jti",
			setup: func(t *testing.T) (string, Request) {
				return e.iss.Token(t, verifiertest.TokenOptions{JTI: "jti-1"}),
					Request{Type: "token", JTI: "jti-1", Exp: &expF, Reason: "leaked", Initiator: "ops"}
			},
			kind:    events.KindToken,
			value:   func(r Request, _ string) string { return r.JTI },
			query:   func(r Request) store.Query { return store.Query{JTI: r.JTI} },
			wantErr: verifier.ErrTokenRevoked,
			checkEvt: func(t *testing.T, ev events.Event) {
				// The caller's exp is not trusted to end the hold early:
				// held as long as any token with that jti could live.
				if latest := time.Now().Add(time.Hour - time.Minute); ev.Expiry.Before(latest) || ev.Reason != "leaked" || ev.Initiator != "ops" {
					t.Errorf("event %+v: want exp after %s (not the caller's %s), reason and initiator", ev, latest, exp)
				}
			},
		},
		{
			name: "token by token",
			setup: func(t *testing.T) (string, Request) {
				tok := e.iss.Token(t, verifiertest.TokenOptions{JTI: "jti-2", TTL: 3 * time.Minute})
				return tok, Request{Type: "token", Token: tok}
			},
			kind:    events.KindToken,
			value:   func(Request, string) string { return "jti-2" },
			query:   func(Request) store.Query { return store.Query{JTI: "jti-2"} },
			wantErr: verifier.ErrTokenRevoked,
			checkEvt: func(t *testing.T, ev events.Event) {
				if d := time.Until(ev.Expiry); d < 2*time.Minute || d > 3*time.Minute {
					t.Errorf("event exp %s is not the token's (in ~3m)", ev.Expiry)
				}
			},
		},
		{
			name: "session",
			setup: func(t *testing.T) (string, Request) {
				return e.iss.Token(t, verifiertest.TokenOptions{SessionID: "sid-1"}), Request{Type: "session", SID: "sid-1"}
			},
			kind:    events.KindSession,
			value:   func(r Request, _ string) string { return r.SID },
			query:   func(r Request) store.Query { return store.Query{SID: r.SID} },
			wantErr: verifier.ErrSessionRevoked,
		},
		{
			name: "subject",
			setup: func(t *testing.T) (string, Request) {
				tok := e.iss.Token(t, verifiertest.TokenOptions{Subject: "bob", IssuedAt: time.Now().Add(-time.Second)})
				return tok, Request{Type: "subject", Sub: "bob"}
			},
			kind:    events.KindSubject,
			value:   func(r Request, _ string) string { return r.Sub },
			query:   func(r Request) store.Query { return store.Query{Sub: r.Sub, IssuedAt: time.Now().Add(-time.Second)} },
			wantErr: verifier.ErrSubjectRevoked,
			checkEvt: func(t *testing.T, ev events.Event) {
				if d := time.Since(ev.Epoch); d < 0 || d > 10*time.Second {
					t.Errorf("epoch %s is not about now", ev.Epoch)
				}
				// Exact at the boundary: a token minted after the logout works.
				after := e.iss.Token(t, verifiertest.TokenOptions{Subject: "bob", IssuedAt: time.Now()})
				if _, err := svc.Verify(context.Background(), after); err != nil {
					t.Errorf("token minted after the logout: %v", err)
				}
			},
		},
		{
			// Last: it revokes the issuer's current key.
			name: "key",
			setup: func(t *testing.T) (string, Request) {
				return e.iss.Token(t, verifiertest.TokenOptions{}), Request{Type: "key", KID: e.iss.KeyID()}
			},
			kind:    events.KindKey,
			value:   func(r Request, _ string) string { return r.KID },
			query:   func(r Request) store.Query { return store.Query{KID: r.KID} },
			wantErr: verifier.ErrKeyRevoked,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, req := tt.setup(t)
			if _, err := svc.Verify(ctx, tok); err != nil {
				t.Fatalf("before the revocation: %v", err)
			}
			before := e.msgs(t)
			res, err := e.client.Revoke(ctx, req, "")
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if !strings.HasPrefix(res.ID, "rev.") || res.Seq == 0 {
				t.Errorf("result %+v", res)
			}
			if got := e.msgs(t); got != before+1 {
				t.Errorf("stream holds %d messages, want %d", got, before+1)
			}
			ev, seq := e.lastEvent(t, tt.kind, tt.value(req, tok))
			if ev.ID != res.ID || seq != res.Seq || ev.Kind != tt.kind {
				t.Errorf("stream has %s %s at %d, answer said %s at %d", ev.Kind, ev.ID, seq, res.ID, res.Seq)
			}
			if tt.checkEvt != nil {
				tt.checkEvt(t, ev)
			}
			if err := e.store.Check(ctx, tt.query(req)); !errors.Is(err, tt.wantErr) {
				t.Errorf("store.Check = %v, want %v", err, tt.wantErr)
			}
			eventually.True(t, 5*time.Second, "a service's verifier to apply the revocation", func() bool {
				_, err := svc.Verify(ctx, tok)
				return errors.Is(err, tt.wantErr)
			})
		})
	}
}

// TestIdempotencyKey: a retry with the same key answers the same event and
// the stream stores it once; the same key for another revocation is refused;
// a retry finishes what a failed attempt left half-done.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		body string
	}{
		{name: "session", body: `{"type":"session","sid":"s-idem","reason":"logout"}`},
		{name: "subject", body: `{"type":"subject","sub":"u-idem"}`},
		{name: "key", body: `{"type":"key","kid":"k-idem"}`},
		{name: "token", body: fmt.Sprintf(`{"type":"token","jti":"j-idem","exp":%d}`, time.Now().Add(time.Minute).Unix())},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "key-" + tt.name
			before := e.msgs(t)
			first := e.revokeJSON(t, tt.body, key).result(t)
			if got := e.msgs(t); got != before+1 {
				t.Fatalf("stream holds %d messages, want %d", got, before+1)
			}
			keys := e.dbsize(t)
			for i := range 3 {
				again := e.revokeJSON(t, tt.body, key).result(t)
				if again != first {
					t.Fatalf("retry %d answered %+v, first answer %+v", i, again, first)
				}
			}
			if got := e.msgs(t); got != before+1 {
				t.Errorf("after retries the stream holds %d messages, want %d", got, before+1)
			}
			if got := e.dbsize(t); got != keys {
				t.Errorf("after retries Redis holds %d keys, want %d", got, keys)
			}
			// The same key for something else is a client bug.
			a := e.revokeJSON(t, `{"type":"session","sid":"another"}`, key)
			if a.status != http.StatusConflict {
				t.Errorf("key reused for another revocation: status %d, want 409: %s", a.status, a.body)
			}
			a.errorBody(t)
		})
	}
	// A request that remembered and recorded its event but died before
	// publishing is finished by its retry, which publishes the remembered
	// event.
	t.Run("retry finishes a half-done request", func(t *testing.T) {
		ctx := testCtx(t)
		ev := events.NewSession("rev.halfdone", "s-half", time.Now())
		idem := &store.Idempotency{Caller: httpx.CallerID(testCredential), Key: "k-half"}
		if rec, err := e.store.Record(ctx, verifiertest.Encoded(t, ev), time.Second, idem); err != nil || rec.Held {
			t.Fatalf("Record: %+v, %v", rec, err)
		}
		before := e.msgs(t)
		res := e.revokeJSON(t, `{"type":"session","sid":"s-half"}`, "k-half").result(t)
		if res.ID != ev.ID {
			t.Errorf("retry published %s, want the remembered %s", res.ID, ev.ID)
		}
		if got := e.msgs(t); got != before+1 {
			t.Errorf("stream holds %d messages, want %d", got, before+1)
		}
	})

	// Without a key, a repeated subject logout raises the epoch again: a
	// second, later event.
	r1 := e.revokeJSON(t, `{"type":"subject","sub":"u-again"}`, "").result(t)
	r2 := e.revokeJSON(t, `{"type":"subject","sub":"u-again"}`, "").result(t)
	if r1.ID == r2.ID || r2.Seq <= r1.Seq {
		t.Errorf("two logouts without key: %+v then %+v, want two events", r1, r2)
	}
}

// TestBadInput: every kind of bad request gets a 4xx JSON error and changes
// nothing, in the stream or in Redis.
func TestBadInput(t *testing.T) {
	e := newEnv(t, nil)
	good := `{"type":"session","sid":"s-bad"}`
	auth := "Bearer " + testCredential
	past := time.Now().Add(-time.Hour).Unix()
	soon := time.Now().Add(time.Minute).Unix()
	tests := []struct {
		name        string
		method      string // default POST
		path        string // default /v1/revocations
		contentType string // default application/json
		body        string
		header      map[string]string // default: the credential
		wantStatus  int
		wantCode    string
	}{
		{name: "malformed JSON", body: `{"type":"session","sid":`, wantStatus: 400},
		{name: "not an object", body: `["session"]`, wantStatus: 400},
		{name: "trailing data", body: good + `{}`, wantStatus: 400},
		{name: "empty body", body: ``, wantStatus: 400},
		{name: "wrong content type", contentType: "text/plain", body: good, wantStatus: 415},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", body: "type=session", wantStatus: 415},
		{name: "body over the limit", body: `{"type":"session","sid":"` + strings.Repeat("a", 20<<10) + `"}`, wantStatus: 413},
		{name: "no credential", body: good, header: map[string]string{}, wantStatus: 401, wantCode: "invalid_client"},
		{name: "wrong credential", body: good, header: map[string]string{"Authorization": "Bearer wrong-credential-0123456789"}, wantStatus: 401, wantCode: "invalid_client"},
		{name: "basic auth", body: good, header: map[string]string{"Authorization": "Basic dGVzdDp0ZXN0"}, wantStatus: 401, wantCode: "invalid_client"},
		{name: "no type", body: `{"sid":"s"}`, wantStatus: 400},
		{name: "unknown type", body: `{"type":"user","sub":"s"}`, wantStatus: 400},
		{name: "unknown field", body: `{"type":"session","sid":"s","admin":true}`, wantStatus: 400},
		{name: "session with jti", body: `{"type":"session","sid":"s","jti":"j"}`, wantStatus: 400},
		{name: "session with empty sub", body: `{"type":"session","sid":"s","sub":""}`, wantStatus: 400},
		{name: "subject with kid", body: `{"type":"subject","sub":"u","kid":"k"}`, wantStatus: 400},
		{name: "key with exp", body: fmt.Sprintf(`{"type":"key","kid":"k","exp":%d}`, soon), wantStatus: 400},
		{name: "token with sid", body: fmt.Sprintf(`{"type":"token","jti":"j","exp":%d,"sid":"s"}`, soon), wantStatus: 400},
		{name: "token and jti", body: fmt.Sprintf(`{"type":"token","jti":"j","exp":%d,"token":"a.b.c"}`, soon), wantStatus: 400},
		{name: "token without exp", body: `{"type":"token","jti":"j"}`, wantStatus: 400},
		{name: "token exp as string", body: fmt.Sprintf(`{"type":"token","jti":"j","exp":"%d"}`, soon), wantStatus: 400},
		{name: "empty sid", body: `{"type":"session","sid":""}`, wantStatus: 400},
		{name: "missing sid", body: `{"type":"session"}`, wantStatus: 400},
		{name: "jti 300 bytes", body: fmt.Sprintf(`{"type":"token","jti":"%s","exp":%d}`, strings.Repeat("j", 300), soon), wantStatus: 400},
		{name: "sub 300 bytes", body: `{"type":"subject","sub":"` + strings.Repeat("u", 300) + `"}`, wantStatus: 400},
		{name: "reason 300 bytes", body: `{"type":"session","sid":"s","reason":"` + strings.Repeat("r", 300) + `"}`, wantStatus: 400},
		{name: "exp year 9999", body: `{"type":"token","jti":"j","exp":253402300799}`, wantStatus: 400},
		{name: "exp in 2 hours", body: fmt.Sprintf(`{"type":"token","jti":"j","exp":%d}`, time.Now().Add(2*time.Hour).Unix()), wantStatus: 400},
		{name: "exp past", body: fmt.Sprintf(`{"type":"token","jti":"j","exp":%d}`, past), wantStatus: 400},
		{name: "exp negative", body: `{"type":"token","jti":"j","exp":-5}`, wantStatus: 400},
		{name: "exp huge", body: `{"type":"token","jti":"j","exp":1e300}`, wantStatus: 400},
		{name: "control character in sid", body: `{"type":"session","sid":"a\u0000b"}`, wantStatus: 400},
		{name: "newline in sub", body: `{"type":"subject","sub":"a\nb"}`, wantStatus: 400},
		{name: "control character in initiator", body: `{"type":"session","sid":"s","initiator":"\u001b[31m"}`, wantStatus: 400},
		{name: "invalid utf-8 in kid", body: "{\"type\":\"key\",\"kid\":\"\xff\xfe\"}", wantStatus: 400},
		{name: "garbage token", body: `{"type":"token","token":"not.a.token"}`, wantStatus: 400},
		{name: "foreign token", body: fmt.Sprintf(`{"type":"token","token":%q}`, verifiertest.NewIssuer(t).Token(t, verifiertest.TokenOptions{})), wantStatus: 400},
		{name: "expired token", body: fmt.Sprintf(`{"type":"token","token":%q}`, e.iss.Token(t, verifiertest.TokenOptions{TTL: -time.Hour})), wantStatus: 400},
		{name: "empty Idempotency-Key", body: good, header: map[string]string{"Authorization": auth, "Idempotency-Key": " "}, wantStatus: 400},
		{name: "long Idempotency-Key", body: good, header: map[string]string{"Authorization": auth, "Idempotency-Key": strings.Repeat("k", 129)}, wantStatus: 400},
		{name: "non-ASCII Idempotency-Key", body: good, header: map[string]string{"Authorization": auth, "Idempotency-Key": "clé"}, wantStatus: 400},
		{name: "GET revocations", method: http.MethodGet, wantStatus: 405},
		{name: "unknown path", path: "/v1/revoke", body: good, wantStatus: 404},

		{name: "introspect: no credential", path: "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: "token=a.b.c", header: map[string]string{}, wantStatus: 401, wantCode: "invalid_client"},
		{name: "introspect: JSON body", path: "/oauth2/introspect", body: `{"token":"a.b.c"}`, wantStatus: 415},
		{name: "introspect: no token", path: "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: "token_type_hint=access_token", wantStatus: 400, wantCode: "invalid_request"},
		{name: "introspect: token twice", path: "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: "token=a&token=b", wantStatus: 400},
		{name: "introspect: bad form", path: "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: "token=%zz", wantStatus: 400},
		{name: "introspect: over the limit", path: "/oauth2/introspect", contentType: "application/x-www-form-urlencoded", body: "token=" + strings.Repeat("a", 20<<10), wantStatus: 413},
		{name: "introspect: GET", method: http.MethodGet, path: "/oauth2/introspect", wantStatus: 405},
	}
	msgs, keys := e.msgs(t), e.dbsize(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path, ct, header := tt.method, tt.path, tt.contentType, tt.header
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/v1/revocations"
			}
			if ct == "" {
				ct = "application/json"
			}
			if header == nil {
				header = map[string]string{"Authorization": auth}
			}
			a := e.do(t, method, path, ct, []byte(tt.body), header)
			if a.status != tt.wantStatus {
				t.Errorf("status %d, want %d: %s", a.status, tt.wantStatus, a.body)
			}
			code, _ := a.errorBody(t)
			if tt.wantCode != "" && code != tt.wantCode {
				t.Errorf("error %q, want %q", code, tt.wantCode)
			}
			if got := e.msgs(t); got != msgs {
				t.Errorf("stream holds %d messages, want %d: state changed", got, msgs)
			}
			if got := e.dbsize(t); got != keys {
				t.Errorf("Redis holds %d keys, want %d: state changed", got, keys)
			}
		})
	}
	// The client reports a 4xx as an *APIError.
	_, err := e.client.Revoke(testCtx(t), Request{Type: "session"}, "")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.Code != "invalid_request" {
		t.Errorf("client error %v, want an *APIError 400 invalid_request", err)
	}
}

// TestRecordedWhileNATSDown: while NATS is down a revocation is recorded
// first and answered 503 saying so; the outbox delivers it once NATS is back,
// without any retry, and a retry with the same key answers the same event,
// stored once.
func TestRecordedWhileNATSDown(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	before := e.msgs(t)
	tok := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-durable"})
	e.nats.Shutdown()
	eventually.True(t, 5*time.Second, "the client to notice NATS is down", func() bool { return !e.nc.IsConnected() })

	a := e.revokeJSON(t, `{"type":"session","sid":"s-durable"}`, "k-durable")
	if a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") == "" {
		t.Fatalf("NATS down: status %d (Retry-After %q), want 503 with Retry-After: %s", a.status, a.header.Get("Retry-After"), a.body)
	}
	var ans RecordedAnswer
	if err := json.Unmarshal(a.body, &ans); err != nil || ans.Error != "temporarily_unavailable" || !ans.Recorded ||
		!strings.HasPrefix(ans.ID, "rev.") || !strings.Contains(ans.Description, "recorded") {
		t.Fatalf("NATS down: body %s, want temporarily_unavailable, recorded:true and the event id", a.body)
	}
	if _, err := e.client.Revoke(ctx, Request{Type: "session", SID: "s-durable"}, "k-durable"); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrRecorded) {
		t.Errorf("client: %v, want ErrUnavailable and ErrRecorded", err)
	}
	// Recorded: Redis look-ups refuse the session at once.
	if err := e.store.Check(ctx, store.Query{SID: "s-durable"}); !errors.Is(err, verifier.ErrSessionRevoked) {
		t.Errorf("store.Check while NATS is down = %v, want ErrSessionRevoked", err)
	}
	if ob, err := e.store.Outbox(ctx); err != nil || ob.Depth != 1 {
		t.Errorf("outbox while NATS is down = %+v, %v; want 1 entry", ob, err)
	}

	// Nobody retries: the outbox drainer publishes it once NATS is back.
	e.nats.Restart(t)
	e.waitReady(t)
	eventually.True(t, 10*time.Second, "the outbox to deliver the recorded event", func() bool {
		ob, err := e.store.Outbox(ctx)
		return err == nil && ob.Depth == 0 && e.msgs(t) == before+1
	})
	ev, seq := e.lastEvent(t, events.KindSession, "s-durable")
	if ev.ID != ans.ID {
		t.Errorf("stream has %s, the 503 answer named %s", ev.ID, ans.ID)
	}
	svc := e.service(t)
	eventually.True(t, 5*time.Second, "a service's verifier to apply it", func() bool {
		_, err := svc.Verify(ctx, tok)
		return errors.Is(err, verifier.ErrSessionRevoked)
	})
	// A retry now answers the same event, which the stream holds once.
	again := e.revokeJSON(t, `{"type":"session","sid":"s-durable"}`, "k-durable").result(t)
	if again.ID != ans.ID || again.Seq != seq {
		t.Errorf("retry answered %+v, want %s at %d", again, ans.ID, seq)
	}
	if got := e.msgs(t); got != before+1 {
		t.Errorf("stream holds %d messages, want %d", got, before+1)
	}
	if got := e.republished(t); got < 1 {
		t.Errorf("republished metric = %v, want ≥ 1", got)
	}
}

// TestRedisDown: without Redis nothing is published and the answer is 503.
func TestRedisDown(t *testing.T) {
	e := newEnv(t, nil)
	before := e.msgs(t)
	e.redis.Stop()
	for _, body := range []string{`{"type":"session","sid":"s-r"}`, `{"type":"subject","sub":"u-r"}`} {
		a := e.revokeJSON(t, body, "")
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("%s with Redis down: status %d, want 503: %s", body, a.status, a.body)
		}
		a.errorBody(t)
	}
	a := e.revokeJSON(t, `{"type":"key","kid":"k-r"}`, "k-r")
	if a.status != http.StatusServiceUnavailable {
		t.Errorf("with key and Redis down: status %d, want 503", a.status)
	}
	// Bad input is still told so: the subject's epoch is read before the
	// event is validated, but its failure is answered after.
	bad := `{"type":"subject","sub":"u-r","reason":"` + strings.Repeat("x", events.MaxTextLen+1) + `"}`
	if a := e.revokeJSON(t, bad, ""); a.status != http.StatusBadRequest {
		t.Errorf("invalid subject revocation with Redis down: status %d, want 400: %s", a.status, a.body)
	}
	if got := e.msgs(t); got != before {
		t.Errorf("stream holds %d messages, want %d: published without recording", got, before)
	}
	if err := e.srv.Ready(testCtx(t)); !errors.Is(err, ErrNotReady) {
		t.Errorf("Ready with Redis down = %v, want ErrNotReady", err)
	}
}

// TestPublishedAsRecorded: a revocation is encoded once, so the stream
// holds the very bytes Redis recorded (a session, token or key record is the
// event itself).
func TestPublishedAsRecorded(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	s, err := e.js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(30 * time.Minute).Unix()
	for _, tt := range []struct {
		body  string
		kind  events.Kind
		value string
	}{
		{body: `{"type":"session","sid":"s-once","reason":"logout"}`, kind: events.KindSession, value: "s-once"},
		{body: fmt.Sprintf(`{"type":"token","jti":"j-once","exp":%d}`, exp), kind: events.KindToken, value: "j-once"},
		{body: `{"type":"key","kid":"k-once","initiator":"ops"}`, kind: events.KindKey, value: "k-once"},
	} {
		if a := e.revokeJSON(t, tt.body, ""); a.status != http.StatusCreated {
			t.Fatalf("%s: status %d: %s", tt.body, a.status, a.body)
		}
		tok := map[events.Kind]string{events.KindSession: "sid", events.KindToken: "jti", events.KindKey: "kid"}[tt.kind]
		keys, err := e.rdb.Keys(ctx, "*:"+tok+":"+tt.value).Result()
		if err != nil || len(keys) != 1 {
			t.Fatalf("%s: record keys = %v, %v; want one", tt.body, keys, err)
		}
		recorded, err := e.rdb.Get(ctx, keys[0]).Result()
		if err != nil {
			t.Fatal(err)
		}
		subj, _ := events.Subject(tt.kind, tt.value)
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) != recorded {
			t.Fatalf("%s: published %s, recorded %s", tt.body, m.Data, recorded)
		}
	}
}

// TestRevokeForOneIssuer: a revocation with "iss" is published scoped to
// that issuer, on its own subject, and leaves the tokens of other issuers
// with the same subject alone (introspection answers through the records).
func TestRevokeForOneIssuer(t *testing.T) {
	e := newEnv(t, nil)
	const idp = "https://idp.example.test/realms/a"
	tok := e.iss.Token(t, verifiertest.TokenOptions{Subject: "dora", IssuedAt: time.Now().Add(-time.Second)})

	if a := e.revokeJSON(t, `{"type":"subject","sub":"dora","iss":"`+idp+`","reason":"provider_logout"}`, ""); a.status != http.StatusCreated {
		t.Fatalf("scoped subject revocation: status %d: %s", a.status, a.body)
	}
	ev, _ := e.lastIssuerEvent(t, idp, events.KindSubject, "dora")
	if ev.Issuer != idp || ev.Sub != "dora" || ev.Reason != "provider_logout" {
		t.Fatalf("published %+v", ev)
	}
	if got := e.introspect(t, tok).introspection(t); got["active"] != true {
		t.Fatalf("own issuer's token of dora after the provider's logout: %v, want active", got)
	}
	// The same, scoped to the own issuer, does reach it.
	if a := e.revokeJSON(t, `{"type":"subject","sub":"dora","iss":"`+e.iss.Issuer()+`"}`, ""); a.status != http.StatusCreated {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	if got := e.introspect(t, tok).introspection(t); got["active"] != false {
		t.Fatalf("after the own issuer's scoped logout: %v, want inactive", got)
	}
	for _, body := range []string{`{"type":"session","sid":"s","iss":""}`, `{"type":"session","sid":"s","iss":7}`, "{\"type\":\"session\",\"sid\":\"s\",\"iss\":\"a\\u0001b\"}"} {
		if a := e.revokeJSON(t, body, ""); a.status != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", body, a.status, a.body)
		} else if code, _ := a.errorBody(t); code != "invalid_request" {
			t.Errorf("%s: error %q", body, code)
		}
	}
}

// TestIntrospect: active, revoked, garbage and expired tokens.
func TestIntrospect(t *testing.T) {
	e := newEnv(t, nil)
	iat := time.Now().Add(-time.Second).Truncate(time.Second)
	tok := e.iss.Token(t, verifiertest.TokenOptions{Subject: "carol", SessionID: "s-in", JTI: "j-in", IssuedAt: iat, TTL: 5 * time.Minute})

	got := e.introspect(t, tok).introspection(t)
	want := map[string]any{
		"active": true, "sub": "carol", "sid": "s-in", "jti": "j-in", "iss": e.iss.Issuer(), "aud": e.iss.Audience(),
		"exp": float64(iat.Add(5 * time.Minute).Unix()), "iat": float64(iat.Unix()), "token_type": "access_token",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("active token: %v, want %v", got, want)
	}

	for _, tc := range []struct{ name, token string }{
		{name: "garbage", token: "garbage"},
		{name: "three garbage segments", token: "a.b.c"},
		{name: "expired", token: e.iss.Token(t, verifiertest.TokenOptions{TTL: -time.Hour})},
		{name: "foreign issuer", token: verifiertest.NewIssuer(t, verifiertest.WithIssuer("https://evil.test")).Token(t, verifiertest.TokenOptions{})},
	} {
		got := e.introspect(t, tc.token).introspection(t)
		if len(got) != 1 || got["active"] != false {
			t.Errorf("%s: %v, want only {\"active\":false}", tc.name, got)
		}
	}

	e.revokeJSON(t, `{"type":"session","sid":"s-in"}`, "").result(t)
	eventually.True(t, 5*time.Second, "introspection to see the revoked session", func() bool {
		got := e.introspect(t, tok).introspection(t)
		return len(got) == 1 && got["active"] == false
	})
}

// TestIntrospectionWithoutNATS: introspection answers from the token
// checker and the Redis records alone, so it keeps answering with NATS down:
// a session recorded revoked is inactive, a live one active; with Redis down
// too it fails closed (503).
func TestIntrospectionWithoutNATS(t *testing.T) {
	e := newEnv(t, nil)
	ctx := testCtx(t)
	revoked := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-nonats-revoked"})
	live := e.iss.Token(t, verifiertest.TokenOptions{SessionID: "s-nonats-live"})

	e.nats.Shutdown()
	if _, err := e.store.Record(ctx, verifiertest.Encoded(t, events.NewSession("rev.nonats", "s-nonats-revoked", time.Now())), time.Second, nil); err != nil {
		t.Fatalf("Record: %v", err)
	}
	if got := e.introspect(t, revoked).introspection(t); got["active"] != false {
		t.Errorf("introspection of the revoked session with NATS down: %v", got)
	}
	if got := e.introspect(t, live).introspection(t); got["active"] != true {
		t.Errorf("introspection of the live session with NATS down: %v", got)
	}

	e.redis.Stop()
	for name, tok := range map[string]string{"live": live, "revoked": revoked} {
		a := e.introspect(t, tok)
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("introspection of the %s session with Redis down: status %d, want 503: %s", name, a.status, a.body)
		}
		a.errorBody(t)
	}
}

// TestRedisFallbackDirect checks NewRedisFallback against the records.
func TestRedisFallbackDirect(t *testing.T) {
	rs := redistest.Run(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := store.New(store.Config{Client: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	fb := NewRedisFallback(st)
	now := time.Now()
	for _, ev := range []events.Event{
		events.NewToken("rev.fb1", "j-fb", now.Add(time.Minute), now),
		events.NewSubject("rev.fb2", "u-fb", now, now),
		events.NewKey("rev.fb3", "k-fb", now),
	} {
		if _, err := st.Record(ctx, verifiertest.Encoded(t, ev), time.Second, nil); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	tests := []struct {
		name    string
		claims  verifier.Claims
		wantErr error
	}{
		{name: "clean", claims: verifier.Claims{ID: "j", SessionID: "s", Subject: "u", KeyID: "k", IssuedAt: now}},
		{name: "jti", claims: verifier.Claims{ID: "j-fb", Subject: "u", KeyID: "k", IssuedAt: now}, wantErr: verifier.ErrTokenRevoked},
		{name: "subject before", claims: verifier.Claims{ID: "j", Subject: "u-fb", KeyID: "k", IssuedAt: now.Add(-time.Millisecond)}, wantErr: verifier.ErrSubjectRevoked},
		{name: "subject same instant", claims: verifier.Claims{ID: "j", Subject: "u-fb", KeyID: "k", IssuedAt: now}, wantErr: verifier.ErrSubjectRevoked},
		{name: "subject after", claims: verifier.Claims{ID: "j", Subject: "u-fb", KeyID: "k", IssuedAt: now.Add(time.Microsecond)}},
		{name: "kid", claims: verifier.Claims{ID: "j", Subject: "u", KeyID: "k-fb", IssuedAt: now}, wantErr: verifier.ErrKeyRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fb.Check(ctx, &tt.claims)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Check = %v, want %v", err, tt.wantErr)
			}
		})
	}
	rs.Stop()
	err = fb.Check(ctx, &verifier.Claims{ID: "j-fb", Subject: "u", IssuedAt: now})
	if !errors.Is(err, ErrFallbackUnavailable) {
		t.Errorf("Redis down: %v, want ErrFallbackUnavailable", err)
	}
	if s := events.RevokedBy(err); s != nil {
		t.Errorf("Redis down: %v passes for a revocation (%v)", err, s)
	}
}

// TestHealthAndMetrics: /healthz, /readyz and /metrics.
func TestHealthAndMetrics(t *testing.T) {
	e := newEnv(t, nil)
	e.revokeJSON(t, `{"type":"session","sid":"s-m"}`, "").result(t)
	e.revokeJSON(t, `{"type":"bogus"}`, "")
	for _, p := range []string{"/healthz", "/readyz"} {
		if a := e.do(t, http.MethodGet, p, "", nil, nil); a.status != http.StatusOK {
			t.Errorf("%s: %d %s", p, a.status, a.body)
		}
	}
	a := e.do(t, http.MethodGet, "/metrics", "", nil, nil)
	for _, want := range []string{
		`jwtrevoke_revoker_revocations_total{`, `outcome="created"`, `type="session"`, `outcome="invalid"`,
		`jwtrevoke_revoker_publish_duration_seconds_bucket`,
		`jwtrevoke_revoker_outbox_depth`, `jwtrevoke_revoker_outbox_oldest_age_seconds`,
	} {
		if !strings.Contains(string(a.body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Not ready before Run has ensured the stream.
	s, err := New(Config{JetStream: e.js, Store: e.store, Credentials: []string{testCredential},
		Issuer: "i", Audiences: []string{"a"}, Algorithms: []string{verifier.EdDSA}, JWKSURL: e.iss.JWKSURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ready(testCtx(t)); !errors.Is(err, ErrNotReady) {
		t.Errorf("Ready before Run = %v, want ErrNotReady", err)
	}
	rec := e.do(t, http.MethodGet, "/readyz", "", nil, nil)
	var body map[string]string
	if err := json.Unmarshal(rec.body, &body); err != nil || body["status"] != "ready" {
		t.Errorf("/readyz body %s", rec.body)
	}
}

// TestRunBeforeNATS: the revoker starts while NATS is down and becomes
// ready once NATS is up.
func TestRunBeforeNATS(t *testing.T) {
	ns := verifiertest.RunJetStream(t)
	_, js := ns.Connect(t)
	ns.Shutdown()
	rs := redistest.Run(t)
	st, err := store.New(store.Config{Client: rs.Client(t)})
	if err != nil {
		t.Fatal(err)
	}
	iss := verifiertest.NewIssuer(t)
	s, err := New(Config{JetStream: js, Store: st, Credentials: []string{testCredential},
		Issuer: iss.Issuer(), Audiences: []string{iss.Audience()}, Algorithms: []string{iss.Algorithm()},
		JWKSURL: iss.JWKSURL(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Run did not return")
		}
		s.Close()
	}()
	if err := s.Ready(ctx); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Ready without NATS = %v", err)
	}
	ns.Restart(t)
	eventually.True(t, 15*time.Second, "ready after NATS started", func() bool { return s.Ready(ctx) == nil })
}
