package deploy

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"

	"github.com/jwtrevoke/jwtrevoke/internal/eventually"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier"
	"github.com/jwtrevoke/jwtrevoke/pkg/verifier/verifiertest"
)

// secretValues invents a value for every Secret key a test resolves, the
// way an operator fills the placeholders: hex, as docs/operations.md says.
type secretValues struct {
	// mu guards v.
	mu sync.Mutex
	v  map[string]string
}

func (s *secretValues) get(name, key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v == nil {
		s.v = map[string]string{}
	}
	k := name + "/" + key
	if _, ok := s.v[k]; !ok {
		s.v[k] = fmt.Sprintf("%x", []byte(rand.Text()))[:48]
	}
	return s.v[k]
}

var dependentVar = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// resolveEnv computes a container's environment as the kubelet does:
// envFrom ConfigMaps first, then env in order, with $(VAR) references to
// variables defined before. Secret values come from sv; a reference to a
// missing ConfigMap, Secret or key fails tb.
func resolveEnv(tb testing.TB, m *manifests, c corev1.Container, sv *secretValues) map[string]string {
	tb.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil || ef.SecretRef != nil {
			tb.Fatalf("container %s: envFrom must name a ConfigMap", c.Name)
		}
		cm, ok := m.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			tb.Fatalf("container %s: envFrom ConfigMap %q does not exist", c.Name, ef.ConfigMapRef.Name)
		}
		for k, v := range cm {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = dependentVar.ReplaceAllStringFunc(e.Value, func(ref string) string {
				name := dependentVar.FindStringSubmatch(ref)[1]
				v, ok := env[name]
				if !ok {
					tb.Errorf("container %s: %s refers to $(%s), not defined before it", c.Name, e.Name, name)
				}
				return v
			})
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			sec, ok := m.secrets[ref.Name]
			if !ok {
				tb.Fatalf("container %s: %s: Secret %q does not exist", c.Name, e.Name, ref.Name)
			}
			if _, ok := sec[ref.Key]; !ok {
				tb.Fatalf("container %s: %s: Secret %q has no key %q", c.Name, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = sv.get(ref.Name, ref.Key)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := m.configMaps[ref.Name][ref.Key]
			if !ok {
				tb.Fatalf("container %s: %s: ConfigMap %q key %q does not exist", c.Name, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "pod-" + e.ValueFrom.FieldRef.FieldPath
		case e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = "1"
		default:
			tb.Fatalf("container %s: %s: unsupported valueFrom", c.Name, e.Name)
		}
	}
	return env
}

// natsClient is one connection with the credentials a manifest gives it,
// recording the asynchronous errors the server sends (permission
// violations arrive that way).
type natsClient struct {
	nc *nats.Conn
	js jetstream.JetStream

	// mu guards errs.
	mu   sync.Mutex
	errs []error
}

func (c *natsClient) permissionErrors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, err := range c.errs {
		if errors.Is(err, nats.ErrPermissionViolation) || strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			out = append(out, err.Error())
		}
	}
	return out
}

// connectAs connects to srv with the user and password of the
// JWTREVOKE_NATS_URL the named Deployment's container is given.
func connectAs(tb testing.TB, m *manifests, sv *secretValues, deployment string, srv *server.Server) *natsClient {
	tb.Helper()
	d, ok := m.deployments[deployment]
	if !ok {
		tb.Fatalf("no Deployment %s", deployment)
	}
	env := resolveEnv(tb, m, d.Spec.Template.Spec.Containers[0], sv)
	raw := strings.Split(env["JWTREVOKE_NATS_URL"], ",")[0]
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		tb.Fatalf("%s: JWTREVOKE_NATS_URL %q: want nats://user:password@host:port (%v)", deployment, raw, err)
	}
	u.Host = strings.TrimPrefix(srv.ClientURL(), "nats://")
	c := &natsClient{}
	nc, err := nats.Connect(u.String(), nats.Name(deployment), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.errs = append(c.errs, err)
	}))
	if err != nil {
		tb.Fatalf("%s: connect as %s: %v", deployment, u.User.Username(), err)
	}
	tb.Cleanup(nc.Close)
	if c.js, err = jetstream.New(nc); err != nil {
		tb.Fatal(err)
	}
	c.nc = nc
	return c
}

// runAuthorizedNATS starts an embedded nats-server whose authorization is
// exactly the auth.conf of the nats-config ConfigMap, with the passwords
// in the environment the StatefulSet gives the server.
func runAuthorizedNATS(tb testing.TB, m *manifests, sv *secretValues) *server.Server {
	tb.Helper()
	dir := tb.TempDir()
	auth, ok := m.configMaps["nats-config"]["auth.conf"]
	if !ok {
		tb.Fatal("ConfigMap nats-config has no auth.conf")
	}
	if !strings.Contains(m.configMaps["nats-config"]["nats.conf"], "include ./auth.conf") {
		tb.Fatal("nats.conf does not include ./auth.conf")
	}
	conf := fmt.Sprintf("host: 127.0.0.1\nport: -1\njetstream { store_dir: %q }\ninclude ./auth.conf\n", filepath.Join(dir, "js"))
	for name, body := range map[string]string{"auth.conf": auth, "test.conf": conf} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	sts, ok := m.statefulSets["nats"]
	if !ok {
		tb.Fatal("no StatefulSet nats")
	}
	for k, v := range resolveEnv(tb, m, sts.Spec.Template.Spec.Containers[0], sv) {
		if strings.HasPrefix(k, "NATS_") {
			tb.Setenv(k, v)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "test.conf"))
	if err != nil {
		tb.Fatalf("nats config with auth.conf: %v", err)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		tb.Fatal(err)
	}
	srv.Start()
	tb.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats-server not ready")
	}
	return srv
}

// TestNATSAuthorization: with exactly the authorization the manifests
// mount, the revoker creates the stream and publishes but cannot consume
// it; the example service (a verifier) cannot publish a revocation nor
// touch the stream, yet its verifier replays the stream and becomes ready.
// The issuer has no NATS user at all.
func TestNATSAuthorization(t *testing.T) {
	ctx := testContext(t, 20*time.Second)
	m := loadManifests(t)
	sv := &secretValues{}
	srv := runAuthorizedNATS(t, m, sv)

	revoker := connectAs(t, m, sv, "revoker", srv)
	if _, err := events.EnsureStream(ctx, revoker.js, events.StreamOptions{MaxTokenLifetime: time.Hour}); err != nil {
		t.Fatalf("revoker: ensure stream: %v (async: %v)", err, revoker.permissionErrors())
	}
	iss := verifiertest.NewIssuer(t)
	sid := "session-revoked-by-the-revoker"
	pub := events.NewPublisher(revoker.js, events.DefaultStreamName)
	if _, err := pub.Publish(ctx, events.NewSession("rev-1", sid, time.Now())); err != nil {
		t.Fatalf("revoker: publish: %v (async: %v)", err, revoker.permissionErrors())
	}
	// Publishing the same revocation again goes through the per-subject
	// look-up (direct get) the publisher uses.
	if _, err := pub.Publish(ctx, events.NewSession("rev-2", sid, time.Now())); err != nil {
		t.Fatalf("revoker: publish again: %v (async: %v)", err, revoker.permissionErrors())
	}
	stream, err := revoker.js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		t.Fatal(err)
	}
	msgs := func() uint64 {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	before := msgs()

	for _, name := range []string{"example"} {
		t.Run(name+" cannot publish", func(t *testing.T) {
			c := connectAs(t, m, sv, name, srv)
			short, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			if _, err := events.Publish(short, c.js, events.NewSubject("forged-"+name, "alice", time.Now(), time.Now())); err == nil {
				t.Fatal("a verifier's credentials published a revocation")
			}
			subj, _ := events.Subject(events.KindSubject, "bob")
			if err := c.nc.Publish(subj, []byte("{}")); err != nil {
				t.Fatal(err)
			}
			if err := c.nc.Flush(); err != nil {
				t.Fatal(err)
			}
			short2, cancel2 := context.WithTimeout(ctx, time.Second)
			defer cancel2()
			if _, err := c.js.CreateOrUpdateStream(short2, jetstream.StreamConfig{Name: events.DefaultStreamName, Subjects: []string{">"}}); err == nil {
				t.Fatal("a verifier's credentials changed the stream")
			}
			eventually.True(t, 5*time.Second, "permission violations for revocations.> and the stream API", func() bool {
				var pubDenied, streamDenied bool
				for _, e := range c.permissionErrors() {
					pubDenied = pubDenied || strings.Contains(e, `"revocations.`)
					streamDenied = streamDenied || strings.Contains(e, "$JS.API.STREAM.")
				}
				return pubDenied && streamDenied
			})
		})
	}
	if got := msgs(); got != before {
		t.Fatalf("stream holds %d messages after the forged publishes, want %d", got, before)
	}

	t.Run("revoker cannot consume", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := revoker.js.OrderedConsumer(short, events.DefaultStreamName, jetstream.OrderedConsumerConfig{}); err == nil {
			t.Fatal("the revoker's credentials created a consumer")
		}
	})

	for _, name := range []string{"example"} {
		t.Run(name+" verifier becomes ready", func(t *testing.T) {
			c := connectAs(t, m, sv, name, srv)
			keys, err := verifier.NewJWKS(verifier.JWKSConfig{URL: iss.JWKSURL()})
			if err != nil {
				t.Fatal(err)
			}
			v, err := verifier.New(verifier.Config{
				Issuer: iss.Issuer(), Audiences: []string{iss.Audience()}, Algorithms: []string{iss.Algorithm()},
				Keys: keys, JetStream: c.js,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(v.Close)
			runCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- v.Run(runCtx) }()
			t.Cleanup(func() { stop(); <-done })
			readyCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := v.WaitReady(readyCtx); err != nil {
				t.Fatalf("not ready: %v (permission errors: %v)", err, c.permissionErrors())
			}
			_, err = v.Verify(ctx, iss.Token(t, verifiertest.TokenOptions{SessionID: sid}))
			if !errors.Is(err, verifier.ErrSessionRevoked) {
				t.Fatalf("token of the revoked session: got %v, want %v", err, verifier.ErrSessionRevoked)
			}
			if _, err := v.Verify(ctx, iss.Token(t, verifiertest.TokenOptions{})); err != nil {
				t.Fatalf("fresh token: %v", err)
			}
			// Its announcements reach the revoker, which may read them.
			sub, err := revoker.nc.SubscribeSync(events.AnnouncementsSubject(events.DefaultStreamName))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = sub.Unsubscribe() }()
			msg, err := sub.NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("no announcement reached the revoker: %v (verifier: %v, revoker: %v)", err, c.permissionErrors(), revoker.permissionErrors())
			}
			if a, err := events.DecodeAnnouncement(msg.Data); err != nil || a.ID != v.ReplicaID() {
				t.Fatalf("announcement %s: %v, want replica %s", msg.Data, err, v.ReplicaID())
			}
			if pe := c.permissionErrors(); len(pe) > 0 {
				t.Fatalf("consuming and announcing needed more permissions: %v", pe)
			}
			for _, e := range revoker.permissionErrors() { // the consumer it was refused above aside
				if strings.Contains(e, "jwtrevoke.replicas") {
					t.Fatalf("following the fleet needed more permissions: %v", e)
				}
			}
		})
	}
}
