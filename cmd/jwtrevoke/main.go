// Command jwtrevoke is the operator's command line: revoke, and see the
// fleet, through the revoker's HTTP API.
//
//	jwtrevoke revoke token|session|subject|key VALUE [-reason R] [-iss ISS] [-wait] [-timeout 2s]
//	jwtrevoke replicas
//	jwtrevoke tail [-from-start] [-n N]     (follows the stream over NATS)
//	jwtrevoke status                       (the stream over NATS, the fleet from the revoker)
//
// For "revoke token", VALUE is the access token itself (the revoker reads
// its jti and exp). The revoker's URL comes from -revoker-url or
// JWTREVOKE_REVOKER_URL (default http://127.0.0.1:8082), its service
// credential from JWTREVOKE_REVOKER_CREDENTIAL or the file named by
// -revoker-credential-file / JWTREVOKE_REVOKER_CREDENTIAL_FILE (never a flag: flags
// show in ps). tail and status read the stream over NATS: -nats-url or
// JWTREVOKE_NATS_URL (default nats://127.0.0.1:4222), -nats-creds or
// JWTREVOKE_NATS_CREDS; the consume-only user "verifier" is enough.
// Tables by default, -o json for scripts. Exit status: 0 done, 1 failed
// (the revoker refused or could not be reached), 2 bad usage, 3 revoked but
// not enforced by every replica within -timeout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
)

// Exit statuses.
const (
	exitOK         = 0
	exitFailed     = 1
	exitUsage      = 2
	exitIncomplete = 3
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

const usage = `usage:
  jwtrevoke [-revoker-url URL] [-revoker-credential-file FILE] [-o table|json] revoke token|session|subject|key VALUE [-reason R] [-iss ISS] [-wait] [-timeout 2s]
  jwtrevoke [-revoker-url URL] [-revoker-credential-file FILE] [-o table|json] replicas
  jwtrevoke [-nats-url URL] [-nats-creds FILE] [-o table|json] tail [-from-start] [-n N]
  jwtrevoke [-nats-url URL] [-nats-creds FILE] [-revoker-url URL] [-o table|json] status
The credential: JWTREVOKE_REVOKER_CREDENTIAL, or the file of -revoker-credential-file (JWTREVOKE_REVOKER_CREDENTIAL_FILE).
Exit status: 0 done, 1 failed, 2 bad usage, 3 not enforced everywhere within -timeout.
`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "jwtrevoke: "+format+"\n", a...)
		if code == exitUsage {
			fmt.Fprint(stderr, usage)
		}
		return code
	}
	fs := flag.NewFlagSet("jwtrevoke", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	url := fs.String("revoker-url", or(getenv("JWTREVOKE_REVOKER_URL"), "http://127.0.0.1:8082"), "the revoker")
	credFile := fs.String("revoker-credential-file", getenv("JWTREVOKE_REVOKER_CREDENTIAL_FILE"), "file holding the service credential")
	output := fs.String("o", "table", "table or json")
	natsURL := fs.String("nats-url", or(getenv("JWTREVOKE_NATS_URL"), "nats://127.0.0.1:4222"), "NATS server URLs")
	natsCreds := fs.String("nats-creds", getenv("JWTREVOKE_NATS_CREDS"), "NATS credentials file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return fail(exitUsage, "%v", err)
	}
	if *output != "table" && *output != "json" {
		return fail(exitUsage, "-o must be table or json")
	}
	cred := getenv("JWTREVOKE_REVOKER_CREDENTIAL")
	if cred == "" && *credFile != "" {
		b, err := os.ReadFile(*credFile)
		if err != nil {
			return fail(exitFailed, "credential: %v", err)
		}
		cred = strings.TrimSpace(string(b))
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return fail(exitUsage, "a command is needed: revoke, replicas, tail or status")
	}
	if rest[0] == "tail" {
		return tail(ctx, *natsURL, *natsCreds, rest[1:], *output == "json", stdout, fail)
	}
	if cred == "" {
		return fail(exitUsage, "no service credential: set JWTREVOKE_REVOKER_CREDENTIAL or -revoker-credential-file")
	}
	client := revoker.NewClient(*url, cred, nil)
	switch rest[0] {
	case "revoke":
		return revoke(ctx, client, rest[1:], *output == "json", stdout, fail)
	case "status":
		if len(rest) > 1 {
			return fail(exitUsage, "status takes no arguments")
		}
		return status(ctx, client, *natsURL, *natsCreds, *output == "json", stdout, fail)
	case "replicas":
		if len(rest) > 1 {
			return fail(exitUsage, "replicas takes no arguments")
		}
		r, err := client.Replicas(ctx)
		if err != nil {
			return fail(exitFailed, "%v", err)
		}
		if *output == "json" {
			return printJSON(stdout, r)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSERVICE\tVERSION\tREADY\tDECIDING\tAPPLIED\tSTALENESS\tHELD\tCAPACITY\tSEEN")
		for _, x := range r.Replicas {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%t\t%d\t%s\t%d\t%d\t%s ago\n", x.ID, x.Service, x.ServiceVersion, x.Ready, x.Deciding,
				x.AppliedSeq, time.Duration(x.StalenessMs)*time.Millisecond, x.Held, x.Capacity, time.Duration(x.LastSeenMs)*time.Millisecond)
		}
		_ = tw.Flush()
		return exitOK
	}
	return fail(exitUsage, "unknown command %q: revoke, replicas, tail or status", rest[0])
}

// revoke runs "revoke TYPE VALUE [flags]".
func revoke(ctx context.Context, c *revoker.Client, args []string, asJSON bool, stdout io.Writer, fail func(int, string, ...any) int) int {
	if len(args) < 2 {
		return fail(exitUsage, "revoke needs a type (token, session, subject, key) and a value")
	}
	typ, value := args[0], args[1]
	fs := flag.NewFlagSet("revoke", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	reason := fs.String("reason", "", "why (recorded with the event)")
	iss := fs.String("iss", "", "only the tokens of this issuer")
	wait := fs.Bool("wait", false, "answer once every live replica enforces it")
	timeout := fs.Duration("timeout", revoker.DefaultWaitTimeout, "how long -wait waits at most")
	if err := fs.Parse(args[2:]); err != nil {
		return fail(exitUsage, "revoke: %v", err)
	}
	if fs.NArg() > 0 {
		return fail(exitUsage, "revoke: unexpected %q", fs.Args())
	}
	req := revoker.Request{Type: typ, Reason: *reason, Iss: *iss, Initiator: "jwtrevoke-cli"}
	switch typ {
	case "token":
		req.Token = value
	case "session":
		req.SID = value
	case "subject":
		req.Sub = value
	case "key":
		req.KID = value
	default:
		return fail(exitUsage, "revoke: unknown type %q: token, session, subject or key", typ)
	}
	var w revoker.Wait
	if *wait {
		w = revoker.Wait{Enforced: true, Timeout: *timeout}
	}
	res, err := c.Revoke(ctx, req, "", w)
	var apiErr *revoker.APIError
	switch {
	case errors.As(err, &apiErr):
		return fail(exitFailed, "refused: %s", apiErr.Description)
	case errors.Is(err, revoker.ErrRecorded):
		return fail(exitFailed, "recorded, not acknowledged by the stream yet (the revoker delivers it): %v", err)
	case err != nil:
		return fail(exitFailed, "%v", err)
	}
	if asJSON {
		if code := printJSON(stdout, res); code != exitOK {
			return code
		}
	} else {
		fmt.Fprintf(stdout, "revoked: %s %s (event %s, seq %d)\n", typ, value, res.ID, res.Seq)
		if e := res.Enforcement; e != nil {
			state := "enforced by every deciding replica"
			if !e.Complete {
				state = "NOT enforced everywhere yet"
			}
			fmt.Fprintf(stdout, "%s: %d of %d replicas confirmed in %d ms", state, e.Confirmed, e.Replicas, e.TookMs)
			if len(e.Pending) > 0 {
				fmt.Fprintf(stdout, "; pending: %s", strings.Join(e.Pending, ", "))
			}
			if len(e.FailingClosed) > 0 {
				fmt.Fprintf(stdout, "; failing closed (refusing every token): %s", strings.Join(e.FailingClosed, ", "))
			}
			fmt.Fprintln(stdout)
		}
	}
	if e := res.Enforcement; e != nil && !e.Complete {
		return exitIncomplete
	}
	return exitOK
}

// printJSONLine prints v as one line of JSON (a stream of events).
func printJSONLine(w io.Writer, v any) {
	_ = json.NewEncoder(w).Encode(v)
}

func printJSON(w io.Writer, v any) int {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return exitFailed
	}
	return exitOK
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
