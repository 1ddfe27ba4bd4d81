package deploy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// root is the repository root, relative to this package's directory.
const root = ".."

// testContext is tb's context bounded by d.
func testContext(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), d)
	tb.Cleanup(cancel)
	return ctx
}

// readFile reads a file of the repository, failing tb if it cannot.
func readFile(tb testing.TB, rel string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		tb.Fatalf("read %s: %v", rel, err)
	}
	return b
}

// undocumented are variables a binary reads (a literal getenv in its
// parse) that its -h output does not mention: cmd/issuer reads
// JWTREVOKE_REDIS_PASSWORD without saying so. Each must appear in the
// binary as a string; remove an entry once the usage names it.
var undocumented = map[string][]string{}

// binaryEnv is what a binary says about its environment.
type binaryEnv struct {
	// reads is every environment variable the binary reads.
	reads map[string]bool
	// required lists the settings it refuses to start without; each entry
	// is a set of alternatives (JWTREVOKE_X or JWTREVOKE_X_FILE).
	required [][]string
}

// binaries are the services the image runs, by command name.
var binaries = []string{"issuer", "revoker", "example"}

// devBinary is dev mode, built beside them (its -h is checked too).
const devBinary = "jwtrevoke-dev"

// authorizerBinary is the verifier as a local authorizer for proxies; not
// (yet) one of the deployed services.
const authorizerBinary = "verifierd"

// builtBinaries caches the build: once per test process.
type builtBinaries struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

var build builtBinaries // the build, shared by the tests of this process

// buildBinaries builds cmd/issuer, cmd/revoker, cmd/example,
// cmd/jwtrevoke-dev and cmd/verifierd once per test process and returns
// the directory holding them.
func buildBinaries(tb testing.TB) string {
	tb.Helper()
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "jwtrevoke-deploy-test-")
		if build.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		args := []string{"build", "-o", build.dir + string(filepath.Separator)}
		for _, b := range append(slices.Clone(binaries), devBinary, authorizerBinary) {
			args = append(args, "./cmd/"+b)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err != nil {
		tb.Fatalf("go build: %v\n%s", build.err, build.out)
	}
	return build.dir
}

var (
	envRe      = regexp.MustCompile(`JWTREVOKE_[A-Z0-9_]+`)
	flagLineRe = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	missingRe  = regexp.MustCompile(`missing required settings: (.*)`)
)

// envName is the documented environment fallback of a flag (README,
// "Configuration"): nats-url → JWTREVOKE_NATS_URL.
func envName(flagName string) string {
	return "JWTREVOKE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envOf runs the binary name twice: with -h, for every flag (each flag's
// environment fallback) and every JWTREVOKE_ name its usage mentions; and
// with an empty environment (issuer and revoker), for the settings it
// refuses to start without.
func envOf(tb testing.TB, name string) binaryEnv {
	tb.Helper()
	bin := filepath.Join(buildBinaries(tb), name)
	ctx := testContext(tb, 10*time.Second)
	help, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput() // exit status differs per binary
	e := binaryEnv{reads: map[string]bool{}}
	for _, m := range flagLineRe.FindAllStringSubmatch(string(help), -1) {
		e.reads[envName(m[1])] = true
	}
	for _, n := range envRe.FindAllString(string(help), -1) {
		e.reads[n] = true
	}
	if extra := undocumented[name]; len(extra) > 0 {
		exe, err := os.ReadFile(bin)
		if err != nil {
			tb.Fatal(err)
		}
		for _, n := range extra {
			if !bytes.Contains(exe, []byte(n)) {
				tb.Fatalf("%s: %s is not in the binary at all", name, n)
			}
			e.reads[n] = true
		}
	}
	if len(e.reads) < 5 {
		tb.Fatalf("%s -h: found only %v in:\n%s", name, e.reads, help)
	}
	if name == "example" { // no required settings: it would start and wait for NATS
		return e
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{}
	out, err := cmd.CombinedOutput()
	m := missingRe.FindStringSubmatch(string(out))
	if err == nil || m == nil {
		tb.Fatalf("%s with an empty environment: want a missing-settings error, got %v:\n%s", name, err, out)
	}
	for _, item := range strings.Split(m[1], ", ") {
		var alts []string
		for _, alt := range strings.Split(item, " or ") {
			alt = strings.TrimSpace(alt)
			if f, ok := strings.CutPrefix(alt, "-"); ok {
				alt = envName(f)
			}
			if !e.reads[alt] {
				tb.Fatalf("%s: required %q is not among the names it reads %v", name, alt, e.reads)
			}
			alts = append(alts, alt)
		}
		slices.Sort(alts)
		e.required = append(e.required, alts)
	}
	return e
}

// binaryEnvs is envOf for every binary.
func binaryEnvs(tb testing.TB) map[string]binaryEnv {
	tb.Helper()
	out := map[string]binaryEnv{}
	for _, b := range append(slices.Clone(binaries), authorizerBinary) {
		out[b] = envOf(tb, b)
	}
	return out
}

// deploymentRequired is what a deployment must set beyond what a binary
// strictly requires: the example service's defaults point at localhost.
var deploymentRequired = map[string][]string{
	"issuer":  {"JWTREVOKE_REDIS_ADDRS", "JWTREVOKE_REVOKER_URL", "JWTREVOKE_REDIS_PASSWORD"},
	"revoker": {"JWTREVOKE_NATS_URL", "JWTREVOKE_REDIS_ADDRS", "JWTREVOKE_REDIS_PASSWORD"},
	"example": {"JWTREVOKE_NATS_URL", "JWTREVOKE_ISSUER", "JWTREVOKE_AUDIENCE", "JWTREVOKE_JWKS_URL"},
	// Its listen address too: a sidecar's port is the proxy's business.
	"verifierd": {"JWTREVOKE_NATS_URL", "JWTREVOKE_LISTEN"},
}

// checkEnv checks a service's environment names against what its binary
// reads: every JWTREVOKE_ name set is read, every required setting is set.
func checkEnv(tb testing.TB, where string, be binaryEnv, bin string, set map[string]bool) {
	tb.Helper()
	for n := range set {
		if strings.HasPrefix(n, "JWTREVOKE_") && !be.reads[n] {
			tb.Errorf("%s: sets %s, which %s does not read", where, n, bin)
		}
	}
	for _, alts := range be.required {
		if !slices.ContainsFunc(alts, func(a string) bool { return set[a] }) {
			tb.Errorf("%s: %s requires one of %v, none is set", where, bin, alts)
		}
	}
	for _, n := range deploymentRequired[bin] {
		if !be.reads[n] {
			tb.Errorf("deploymentRequired[%s] names %s, which %s does not read", bin, n, bin)
		}
		if !set[n] {
			tb.Errorf("%s: %s is not set", where, n)
		}
	}
}

func TestBinaryEnvironment(t *testing.T) {
	envs := binaryEnvs(t)
	for _, tc := range []struct {
		bin      string
		reads    []string
		required int
	}{
		{bin: "issuer", reads: []string{"JWTREVOKE_KEY_DIR", "JWTREVOKE_REFRESH_SECRET", "JWTREVOKE_REDIS_PASSWORD"}, required: 5},
		{bin: "revoker", reads: []string{"JWTREVOKE_STREAM_REPLICAS", "JWTREVOKE_SERVICE_CREDENTIALS", "JWTREVOKE_REDIS_PASSWORD"}, required: 4},
		{bin: "example", reads: []string{"JWTREVOKE_NATS_URL", "JWTREVOKE_JWKS_URL", "JWTREVOKE_MAX_STALENESS"}, required: 0},
		{bin: authorizerBinary, reads: []string{"JWTREVOKE_GRPC_LISTEN", "JWTREVOKE_HEADER_SUBJECT", "JWTREVOKE_PROVIDERS"}, required: 3},
	} {
		e := envs[tc.bin]
		for _, n := range tc.reads {
			if !e.reads[n] {
				t.Errorf("%s: %s not found among %v", tc.bin, n, e.reads)
			}
		}
		if len(e.required) != tc.required {
			t.Errorf("%s: required %v, want %d entries", tc.bin, e.required, tc.required)
		}
	}
}

// TestMain removes the binaries built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
	os.Exit(code)
}
