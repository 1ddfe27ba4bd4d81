package process

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
)

// EnvName is the environment fallback of a flag: nats-url →
// JWTREVOKE_NATS_URL.
func EnvName(flagName string) string {
	return "JWTREVOKE_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Flags is the command line every jwtrevoke binary reads the same way:
// each flag falls back to its environment variable [EnvName] when not given
// (a flag on the command line wins), -h lists every flag with its
// environment name and default and exits 0, and the settings several
// binaries share are defined once here under one name. Define flags on
// [Flags.Set], then call [Flags.Parse].
type Flags struct {
	// Set is the underlying flag set; define the binary's own flags on it.
	Set   *flag.FlagSet
	name  string
	intro string
	// aliases maps a deprecated flag name to its current one.
	aliases map[string]string
	// retired maps a flag that no longer has an effect to why.
	retired map[string]string
}

// NewFlags returns the flags of the binary name; intro, if set, is printed
// by -h between the usage line and the list (what the environment offers
// beyond the flags, such as secrets).
func NewFlags(name, intro string, output io.Writer) *Flags {
	f := &Flags{Set: flag.NewFlagSet(name, flag.ContinueOnError), name: name, intro: intro, aliases: map[string]string{}, retired: map[string]string{}}
	f.Set.SetOutput(output)
	f.Set.Usage = f.usage
	return f
}

// Listen defines -listen, the HTTP listen address.
func (f *Flags) Listen(p *string, def string) {
	f.Set.StringVar(p, "listen", def, "HTTP listen address")
}

// Logging defines -log-level (debug, info, warn, error) and -log-format
// (json, text); see [Logger].
func (f *Flags) Logging(level, format *string, defLevel, defFormat string) {
	f.Set.StringVar(level, "log-level", defLevel, "log level: debug, info, warn or error")
	f.Set.StringVar(format, "log-format", defFormat, "log format: json or text")
}

// NATS defines -nats-url and -nats-creds.
func (f *Flags) NATS(url, creds *string) {
	f.Set.StringVar(url, "nats-url", "nats://127.0.0.1:4222", "NATS server URLs, comma-separated; may carry user:password")
	f.Set.StringVar(creds, "nats-creds", "", "NATS credentials file (.creds)")
}

// Redis defines -redis-addrs, -redis-master and -redis-prefix. The
// password comes from JWTREVOKE_REDIS_PASSWORD only (flags show in ps).
func (f *Flags) Redis(addrs, master, prefix *string) {
	f.Set.StringVar(addrs, "redis-addrs", "127.0.0.1:6379", "Redis addresses, comma-separated: one server, Sentinels (with -redis-master) or Cluster nodes")
	f.Set.StringVar(master, "redis-master", "", "Redis Sentinel master name")
	f.Set.StringVar(prefix, "redis-prefix", "", "Redis key prefix, the same on issuer and revoker; empty means jwtrevoke")
}

// EpochScopes defines -epoch-scopes, the token claims whose values are
// epoch scopes (verifier.Config.EpochScopes): the same list on the revoker,
// the issuer and every verifier. Split it with [SplitList].
func (f *Flags) EpochScopes(p *string) {
	f.Set.StringVar(p, "epoch-scopes", "", `token claims whose values can be logged out as a whole, comma-separated (at most 8; e.g. client_id,tenant,email); the same on the revoker, the issuer and every verifier`)
}

// Deprecated makes old, on the command line or as EnvName(old), a
// deprecated alias of the flag name (defined before): it still works, Parse
// warns, and -h does not list it.
func (f *Flags) Deprecated(old, name string) {
	cur := f.Set.Lookup(name)
	f.Set.Var(cur.Value, old, "deprecated: use -"+name)
	f.aliases[old] = name
}

// Retired accepts name (on the command line or as EnvName(name)) without
// using it, so a deployment that still sets it keeps starting: Parse warns
// that it no longer has an effect and why, and -h does not list it. A
// retired bool flag (isBool) may be given without a value.
func (f *Flags) Retired(name, why string, isBool bool) {
	f.Set.Var(retiredValue{isBool: isBool}, name, "retired: "+why)
	f.retired[name] = why
}

// retiredValue accepts and discards any value.
type retiredValue struct{ isBool bool }

func (retiredValue) String() string     { return "" }
func (retiredValue) Set(string) error   { return nil }
func (v retiredValue) IsBoolFlag() bool { return v.isBool }

// Parse parses args, then sets every flag not given from its environment
// variable (read with getenv). It returns flag.ErrHelp after printing the
// usage for -h, and every bad value at once otherwise. A deprecated alias
// used is reported on the flag set's output.
func (f *Flags) Parse(args []string, getenv func(string) string) error {
	if err := f.Set.Parse(args); err != nil {
		return err
	}
	if f.Set.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", f.Set.Args())
	}
	given := map[string]bool{}
	f.Set.Visit(func(fl *flag.Flag) {
		given[fl.Name] = true
		if why, ok := f.retired[fl.Name]; ok {
			f.warnRetired("-"+fl.Name, why)
		}
		if cur, ok := f.aliases[fl.Name]; ok {
			given[cur] = true
			f.warn("-"+fl.Name, "-"+cur)
		}
	})
	var errs []error
	set := func(name, env string) bool {
		v := getenv(env)
		if v == "" {
			return false
		}
		if err := f.Set.Set(name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
		}
		return true
	}
	f.Set.VisitAll(func(fl *flag.Flag) {
		if _, alias := f.aliases[fl.Name]; alias || given[fl.Name] {
			return
		}
		if why, ok := f.retired[fl.Name]; ok {
			if getenv(EnvName(fl.Name)) != "" {
				f.warnRetired(EnvName(fl.Name), why)
			}
			return
		}
		if set(fl.Name, EnvName(fl.Name)) {
			return
		}
		for old, cur := range f.aliases {
			if cur == fl.Name && set(fl.Name, EnvName(old)) {
				f.warn(EnvName(old), EnvName(cur))
			}
		}
	})
	return errors.Join(errs...)
}

func (f *Flags) warn(old, cur string) {
	fmt.Fprintf(f.Set.Output(), "%s: warning: %s is deprecated, use %s\n", f.name, old, cur)
}

func (f *Flags) warnRetired(name, why string) {
	fmt.Fprintf(f.Set.Output(), "%s: warning: %s no longer has an effect: %s\n", f.name, name, why)
}

// usage prints, for every flag but the deprecated aliases and retired flags, its name, type,
// meaning, environment name and default:
//
//	-listen string
//	  	HTTP listen address (env JWTREVOKE_LISTEN; default :8081)
func (f *Flags) usage() {
	w := f.Set.Output()
	fmt.Fprintf(w, "Usage: %s [flags]\n\nEvery flag falls back to JWTREVOKE_<FLAG> (upper case, '-' as '_'); a flag given on the command line wins.\n", f.name)
	if f.intro != "" {
		fmt.Fprintf(w, "%s\n", f.intro)
	}
	fmt.Fprintln(w)
	var all []*flag.Flag
	f.Set.VisitAll(func(fl *flag.Flag) {
		_, alias := f.aliases[fl.Name]
		_, retired := f.retired[fl.Name]
		if !alias && !retired {
			all = append(all, fl)
		}
	})
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	for _, fl := range all {
		typ, usage := flag.UnquoteUsage(fl)
		fmt.Fprintf(w, "  -%s\n    \t%s (env %s", strings.TrimSpace(fl.Name+" "+typ), usage, EnvName(fl.Name))
		if fl.DefValue != "" {
			fmt.Fprintf(w, "; default %s", fl.DefValue)
		}
		fmt.Fprintln(w, ")")
	}
}

// Logger returns the logger -log-level and -log-format describe.
func Logger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want json or text", format)
}
