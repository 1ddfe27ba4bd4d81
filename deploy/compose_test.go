package deploy

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
)

// loadCompose loads docker-compose.yml with compose-go: the Compose
// specification's schema, interpolation and normalisation, as
// `docker compose` does. No variable comes from the test's environment.
func loadCompose(tb testing.TB) *types.Project {
	tb.Helper()
	ctx := testContext(tb, 10*time.Second)
	abs, err := filepath.Abs(root)
	if err != nil {
		tb.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(abs, "docker-compose.yml")},
		cli.WithWorkingDirectory(abs), cli.WithName("jwtrevoke"), cli.WithEnv(nil), cli.WithResolvedPaths(true))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		tb.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// listenPort is the port of a JWTREVOKE_LISTEN value such as ":8081".
func listenPort(listen string) string {
	_, port, _ := strings.Cut(listen, ":")
	return port
}

// natsUsers maps each service that connects to NATS to the user auth.conf
// gives it; the issuer reads Redis only.
var natsUsers = map[string]string{"revoker": "revoker", "example": "verifier", "verifierd": "verifier"}

func TestCompose(t *testing.T) {
	p := loadCompose(t)
	abs, _ := filepath.Abs(root)
	envs := binaryEnvs(t)
	for _, want := range []string{"nats", "redis", "keygen", "issuer", "revoker", "example", "gateway", "verifierd", "echo", "edge"} {
		if _, ok := p.Services[want]; !ok {
			t.Errorf("no service %s", want)
		}
	}
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
				continue
			}
			if d.Condition == types.ServiceConditionHealthy && target.HealthCheck == nil {
				t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
			}
		}
		if name != "keygen" && (s.HealthCheck == nil || len(s.HealthCheck.Test) < 2) {
			t.Errorf("%s has no health check", name)
		}
	}

	published := map[string][]string{}
	for _, bin := range append(slices.Clone(binaries), authorizerBinary) {
		s, ok := p.Services[bin]
		if !ok {
			continue
		}
		where := "service " + bin
		if s.Build == nil || s.Build.Context != abs || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: not built from the root Dockerfile: %+v", where, s.Build)
		}
		if s.Image != p.Services["issuer"].Image {
			t.Errorf("%s: image %q, want the one image of every service", where, s.Image)
		}
		if len(s.Command) != 1 || s.Command[0] != bin {
			t.Errorf("%s: command %v, want [%s]", where, s.Command, bin)
		}
		set := map[string]bool{}
		env := map[string]string{}
		for k, v := range s.Environment {
			set[k] = true
			if v != nil {
				env[k] = *v
			}
		}
		checkEnv(t, where, envs[bin], bin, set)
		port := listenPort(env["JWTREVOKE_LISTEN"])
		if port == "" {
			t.Errorf("%s: JWTREVOKE_LISTEN not set", where)
		}
		hc := s.HealthCheck
		if hc == nil || len(hc.Test) != 3 || hc.Test[0] != "CMD" || hc.Test[1] != "/usr/local/bin/healthcheck" ||
			hc.Test[2] != "http://127.0.0.1:"+port+"/readyz" {
			t.Errorf("%s: health check %v, want the image's healthcheck on /readyz of port %s", where, hc, port)
		}
		for _, pc := range s.Ports {
			if pc.Target != 0 && pc.Published != "" {
				published[bin] = append(published[bin], pc.Published)
				if got := pc.Target; port != strconv.FormatUint(uint64(got), 10) {
					t.Errorf("%s: publishes container port %d, listens on %s", where, got, port)
				}
			}
		}
		// Secret files are the service's mounted secrets.
		for k, v := range env {
			if !strings.HasSuffix(k, "_FILE") {
				continue
			}
			name, ok := strings.CutPrefix(v, "/run/secrets/")
			if !ok || !slices.ContainsFunc(s.Secrets, func(r types.ServiceSecretConfig) bool { return r.Source == name }) {
				t.Errorf("%s: %s=%s is not one of its secrets", where, k, v)
				continue
			}
			sec, ok := p.Secrets[name]
			if !ok {
				t.Errorf("%s: secret %s is not defined", where, name)
				continue
			}
			if _, err := os.Stat(sec.File); err != nil {
				t.Errorf("secret %s: %v", name, err)
			}
		}
		if _, ok := natsUsers[bin]; !ok {
			continue
		}
		u, err := url.Parse(env["JWTREVOKE_NATS_URL"])
		if err != nil || u.User == nil || u.User.Username() != natsUsers[bin] || u.Host != "nats:4222" {
			t.Errorf("%s: JWTREVOKE_NATS_URL %q: want user %s at nats:4222", where, env["JWTREVOKE_NATS_URL"], natsUsers[bin])
		}
	}
	if r := p.Services["example"].Deploy; r == nil || r.Replicas == nil || *r.Replicas != 3 {
		t.Error("the example service must run 3 replicas")
	}
	for svc, want := range map[string][]string{"issuer": {"8081"}, "revoker": {"8082"}, "example": nil, "verifierd": nil} {
		if !slices.Equal(published[svc], want) {
			t.Errorf("%s publishes %v, want %v", svc, published[svc], want)
		}
	}
	if gw := p.Services["gateway"]; len(gw.Ports) != 1 || gw.Ports[0].Published != "8080" {
		t.Errorf("the gateway must publish 8080: %v", gw.Ports)
	}
	if edge := p.Services["edge"]; len(edge.Ports) != 1 || edge.Ports[0].Published != "8000" {
		t.Errorf("the edge nginx in front of the echo service must publish 8000: %v", edge.Ports)
	}

	t.Run("redis persistence", func(t *testing.T) {
		cmd := strings.Join(p.Services["redis"].Command, " ")
		if !strings.Contains(cmd, "--appendonly yes") || !regexp.MustCompile(`--appendfsync (always|everysec)`).MatchString(cmd) {
			t.Errorf("redis runs without AOF persistence: %s", cmd)
		}
		if !slices.ContainsFunc(p.Services["redis"].Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/data" && v.Type == types.VolumeTypeVolume }) {
			t.Error("redis /data is not a named volume")
		}
	})

	t.Run("nats config", func(t *testing.T) {
		// The files mounted into the container, parsed by nats-server
		// with the container's environment.
		dir := t.TempDir()
		nats := p.Services["nats"]
		for _, v := range nats.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			b, err := os.ReadFile(v.Source)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(v.Target)), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(nats.Command, []string{"nats-server", "--config", "/etc/nats/nats.conf"}) {
			t.Fatalf("nats command %v", nats.Command)
		}
		k8sAuth := readFile(t, "deploy/k8s/nats/auth.conf")
		if got, _ := os.ReadFile(filepath.Join(dir, "auth.conf")); string(got) != string(k8sAuth) {
			t.Error("compose does not mount deploy/k8s/nats/auth.conf as auth.conf")
		}
		for k, v := range nats.Environment {
			if v != nil {
				t.Setenv(k, *v)
			}
		}
		opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf"))
		if err != nil {
			t.Fatalf("compose nats.conf: %v", err)
		}
		if !opts.JetStream || !opts.SyncAlways || opts.StoreDir != "/data" {
			t.Errorf("JetStream %v, sync always %v, store %q: want true, true, /data", opts.JetStream, opts.SyncAlways, opts.StoreDir)
		}
		// Each service's password is the one nats-server holds for its user.
		for svc, user := range natsUsers {
			u, _ := url.Parse(*p.Services[svc].Environment["JWTREVOKE_NATS_URL"])
			pw, _ := u.User.Password()
			i := slices.IndexFunc(opts.Users, func(nu *server.User) bool { return nu.Username == user })
			if i < 0 || opts.Users[i].Password != pw {
				t.Errorf("%s: the password in its NATS URL is not user %s's", svc, user)
			}
		}
	})
}

func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "Dockerfile"))
	from := regexp.MustCompile(`(?m)^FROM[ \t]+(.+)$`).FindAllStringSubmatch(df, -1)
	if len(from) < 2 {
		t.Fatalf("want a multi-stage build, found %d FROM lines", len(from))
	}
	final := from[len(from)-1][1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.Contains(final, "nonroot") {
		t.Errorf("runtime image %q: want distroless static nonroot", final)
	}
	users := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(df, -1)
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1][1], "0") || strings.HasPrefix(users[len(users)-1][1], "root") {
		t.Errorf("the runtime image must run as a non-root USER: %v", users)
	}
	for _, want := range []string{"CGO_ENABLED=0", "./cmd/issuer", "./cmd/revoker", "./cmd/example", "./cmd/verifierd", "./deploy/healthcheck",
		"/out/issuer /out/revoker /out/example /out/verifierd /out/healthcheck /usr/local/bin/"} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile does not contain %q", want)
		}
	}
	ignore := string(readFile(t, ".dockerignore"))
	for _, line := range strings.Split(ignore, "\n") {
		line = strings.TrimSpace(line)
		for _, needed := range []string{"cmd", "internal", "pkg", "deploy/healthcheck", "go.mod", "go.sum"} {
			if line != "" && !strings.HasPrefix(line, "#") && (strings.TrimSuffix(line, "/") == needed || line == "*") {
				t.Errorf(".dockerignore excludes %s, which the build needs", needed)
			}
		}
	}
}

// TestComposeEdgeIsTheTestedConfig: the compose edge nginx runs
// deploy/nginx/jwtrevoke.conf, the configuration internal/gateway tests
// with a real nginx, changed only in the two upstream addresses.
func TestComposeEdgeIsTheTestedConfig(t *testing.T) {
	conf := string(readFile(t, "deploy/nginx/jwtrevoke.conf"))
	for _, r := range []struct{ re, with string }{
		{`(?m)^(\s*server )127\.0\.0\.1:8083;.*$`, "${1}verifierd:8083;"},
		{`(?m)^(\s*server )127\.0\.0\.1:3000;.*$`, "${1}echo:3000;"},
	} {
		re := regexp.MustCompile(r.re)
		if !re.MatchString(conf) {
			t.Fatalf("deploy/nginx/jwtrevoke.conf has no line matching %s", r.re)
		}
		conf = re.ReplaceAllString(conf, r.with)
	}
	var indented []string
	for _, l := range strings.Split(strings.TrimRight(conf, "\n"), "\n") {
		if l != "" {
			l = "    " + l
		}
		indented = append(indented, l)
	}
	if edge := string(readFile(t, "deploy/compose/edge.conf")); !strings.Contains(edge, strings.Join(indented, "\n")) {
		t.Error("deploy/compose/edge.conf is not deploy/nginx/jwtrevoke.conf with the compose addresses: copy it again")
	}
}
