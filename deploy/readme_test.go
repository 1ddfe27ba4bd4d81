package deploy

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// helpFlag is one flag as a binary's -h lists it.
type helpFlag struct{ env, def string }

var helpFlagRe = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)(?: \S+)?\n    \t.* \(env (JWTREVOKE_[A-Z0-9_]+)(?:; default (.*))?\)$`)

// helpFlags runs bin -h, which must exit 0, and returns its flags by name
// and every JWTREVOKE_ name it mentions.
func helpFlags(tb testing.TB, bin string) (map[string]helpFlag, map[string]bool) {
	tb.Helper()
	dir := buildBinaries(tb) // before the deadline of -h: a cold build takes a while
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, bin), "-h").CombinedOutput()
	if err != nil {
		tb.Fatalf("%s -h: %v (want exit 0)\n%s", bin, err, out)
	}
	flags := map[string]helpFlag{}
	for _, m := range helpFlagRe.FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = helpFlag{env: m[2], def: m[3]}
	}
	if n := len(flagLineRe.FindAllString(string(out), -1)); n != len(flags) || n == 0 {
		tb.Fatalf("%s -h: %d flag lines, %d with env and default:\n%s", bin, n, len(flags), out)
	}
	mentioned := map[string]bool{}
	for _, n := range envRe.FindAllString(string(out), -1) {
		mentioned[n] = true
	}
	return flags, mentioned
}

var readmeRowRe = regexp.MustCompile("^\\| (`-[a-z0-9-]+`|\\(env only\\)) \\| `(JWTREVOKE_[A-Z0-9_]+)` \\| ([^|]+) \\|")

// TestREADMEFlagTables: each binary's table in README.md "Configuration"
// lists exactly the flags its -h lists, with the same environment name and
// default (a flag without a default says required, none or what happens
// instead, not in backquotes); an "(env only)" row names a variable the
// binary's -h mentions.
func TestREADMEFlagTables(t *testing.T) {
	readme := string(readFile(t, "README.md"))
	for _, tt := range []struct {
		bin     string
		heading string
	}{
		{bin: "issuer", heading: "### issuer (`cmd/issuer`)"},
		{bin: "revoker", heading: "### revoker (`cmd/revoker`)"},
		{bin: "example", heading: "### example service (`cmd/example`)"},
		{bin: devBinary, heading: "### dev mode (`cmd/jwtrevoke-dev`)"},
		{bin: authorizerBinary, heading: "### verifierd (`cmd/verifierd`)"},
	} {
		t.Run(tt.bin, func(t *testing.T) {
			flags, mentioned := helpFlags(t, tt.bin)
			_, section, ok := strings.Cut(readme, tt.heading+"\n")
			if !ok {
				t.Fatalf("README has no %q", tt.heading)
			}
			section, _, _ = strings.Cut(section, "\n#")
			seen := map[string]bool{}
			for _, line := range strings.Split(section, "\n") {
				m := readmeRowRe.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				env, def := m[2], strings.TrimSpace(m[3])
				if m[1] == "(env only)" {
					if !mentioned[env] {
						t.Errorf("README row %s: %s -h does not mention it", env, tt.bin)
					}
					continue
				}
				name := strings.Trim(m[1], "`-")
				f, ok := flags[name]
				switch {
				case !ok:
					t.Errorf("README lists -%s, which %s -h does not", name, tt.bin)
					continue
				case env != f.env:
					t.Errorf("-%s: README env %s, -h says %s", name, env, f.env)
				case f.def != "" && def != "`"+f.def+"`":
					t.Errorf("-%s: README default %s, -h says `%s`", name, def, f.def)
				case f.def == "" && strings.HasPrefix(def, "`"):
					t.Errorf("-%s: README default %s, -h gives none", name, def)
				}
				seen[name] = true
			}
			for name := range flags {
				if !seen[name] {
					t.Errorf("README's %s table lacks -%s", tt.bin, name)
				}
			}
		})
	}
}
