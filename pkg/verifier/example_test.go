package verifier_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
)

// Example shows the whole life of a token: verified locally, then rejected
// everywhere once its session is revoked on the stream.
func Example() {
	// A NATS server with JetStream; in production this is your cluster.
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	ns, _ := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
	ns.Start()
	defer ns.Shutdown()
	ns.ReadyForConnections(5 * time.Second)
	nc, _ := nats.Connect(ns.ClientURL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	if _, err := events.EnsureStream(ctx, js, events.StreamOptions{MaxTokenLifetime: time.Hour}); err != nil {
		fmt.Println(err)
		return
	}

	// The issuer's key; a real service would use verifier.NewJWKS.
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys, err := verifier.StaticKeys(verifier.Key{ID: "k1", Algorithm: verifier.EdDSA, Public: pub})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := verifier.New(verifier.Config{
		Issuer:     "https://issuer.example",
		Audiences:  []string{"api"},
		Algorithms: []string{verifier.EdDSA},
		Keys:       keys,
		JetStream:  js,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer v.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go v.Run(runCtx)
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := v.WaitReady(waitCtx); err != nil {
		fmt.Println(err)
		return
	}

	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
		"iss": "https://issuer.example", "aud": "api", "sub": "alice", "sid": "s-1", "jti": "t-1",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	tok.Header["kid"] = "k1"
	raw, _ := tok.SignedString(priv)

	claims, err := v.Verify(ctx, raw)
	fmt.Println("before logout:", claims.Subject, err)

	// Logout: the revoker publishes a session event (here we do it directly).
	ev := events.NewSession("logout.s-1", "s-1", time.Now())
	ev.Reason = "logout"
	if _, err := events.Publish(ctx, js, ev); err != nil {
		fmt.Println(err)
		return
	}
	// Every verifier applies it within milliseconds; wait for this one.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.After(5 * time.Second); err == nil; {
		select {
		case <-tick.C:
			_, err = v.Verify(ctx, raw)
		case <-deadline:
			fmt.Println("not revoked within 5s")
			return
		}
	}
	fmt.Println("after logout:", err)
	fmt.Println("401?", errors.Is(err, verifier.ErrInvalidToken), "reason:", verifier.Reason(err))
	// Output:
	// before logout: alice <nil>
	// after logout: verifier: session revoked (reason: logout)
	// 401? true reason: revoked_session
}

// ExampleNewChecker checks a token by its keys and claims alone: no stream,
// no revocation state.
func ExampleNewChecker() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	keys, err := verifier.StaticKeys(verifier.Key{ID: "k1", Algorithm: verifier.EdDSA, Public: pub})
	if err != nil {
		fmt.Println(err)
		return
	}
	checker, err := verifier.NewChecker(keys, verifier.CheckerConfig{
		Issuer:     "https://issuer.example",
		Audiences:  []string{"api"},
		Algorithms: []string{verifier.EdDSA},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer checker.Close()

	now := time.Now()
	sign := func(aud string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"iss": "https://issuer.example", "aud": aud, "sub": "alice", "sid": "s-1", "jti": "t-1",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		})
		tok.Header["kid"] = "k1"
		raw, _ := tok.SignedString(priv)
		return raw
	}
	c, err := checker.Check(context.Background(), sign("api"))
	fmt.Println(c.Subject, c.SessionID, err)
	_, err = checker.Check(context.Background(), sign("other"))
	fmt.Println(verifier.Reason(err), errors.Is(err, verifier.ErrInvalidToken))
	// Output:
	// alice s-1 <nil>
	// claims true
}

// ExampleCheckerConfig_providers trusts an outside provider beside the own
// issuer: each token is checked with the keys and rules of the issuer its
// iss names, here a provider that signs with ES256 and carries its token id
// in "uti".
func ExampleCheckerConfig_providers() {
	ownPub, _, _ := ed25519.GenerateKey(rand.Reader)
	own, _ := verifier.StaticKeys(verifier.Key{ID: "own-1", Algorithm: verifier.EdDSA, Public: ownPub})
	idpKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	idp, _ := verifier.StaticKeys(verifier.Key{ID: "idp-1", Algorithm: verifier.ES256, Public: &idpKey.PublicKey})
	checker, err := verifier.NewChecker(own, verifier.CheckerConfig{
		Issuer:     "https://issuer.example",
		Audiences:  []string{"api"},
		Algorithms: []string{verifier.EdDSA},
		Providers: []verifier.Provider{{
			Name:         "entra",
			Issuer:       "https://login.example/tenant/v2.0",
			Keys:         idp,
			Audiences:    []string{"api://orders"},
			Algorithms:   []string{verifier.ES256},
			TokenIDClaim: "uti",
		}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer checker.Close()

	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
		"iss": "https://login.example/tenant/v2.0", "aud": "api://orders", "sub": "bob", "uti": "u-1",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	})
	tok.Header["kid"] = "idp-1"
	raw, _ := tok.SignedString(idpKey)
	c, err := checker.Check(context.Background(), raw)
	fmt.Println(c.Issuer, c.Subject, c.ID, err)
	// Output:
	// https://login.example/tenant/v2.0 bob u-1 <nil>
}

// ExampleNewLogoutChecker checks an OpenID Connect back-channel logout token
// of a provider, shaped as Ory Hydra sends one (sid, no sub, no exp), and
// refuses an ID token of the same provider presented in its place.
func ExampleNewLogoutChecker() {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys, _ := verifier.StaticKeys(verifier.Key{ID: "idp-1", Algorithm: verifier.ES256, Public: &key.PublicKey})
	checker, err := verifier.NewLogoutChecker(verifier.LogoutConfig{
		Issuer:     "https://idp.example/",
		ClientID:   "my-client", // the client registered with the back-channel logout URL
		Keys:       keys,
		Algorithms: []string{verifier.ES256},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	sign := func(claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
		tok.Header["kid"] = "idp-1"
		raw, _ := tok.SignedString(key)
		return raw
	}
	logout := jwt.MapClaims{
		"iss": "https://idp.example/", "aud": []string{"my-client"}, "iat": time.Now().Unix(),
		"jti": "lt-1", "sid": "s-1",
		"events": map[string]any{verifier.BackchannelLogoutEvent: map[string]any{}},
	}
	lt, err := checker.Check(context.Background(), sign(logout))
	fmt.Println(lt.SessionID, lt.Subject == "", lt.ID, err)

	idToken := jwt.MapClaims{"iss": "https://idp.example/", "aud": "my-client", "iat": time.Now().Unix(),
		"jti": "id-1", "sub": "alice", "nonce": "n-1", "exp": time.Now().Add(time.Hour).Unix()}
	_, err = checker.Check(context.Background(), sign(idToken))
	fmt.Println(err)
	// Output:
	// s-1 true lt-1 <nil>
	// verifier: invalid claims: a logout token must not carry a nonce
}
