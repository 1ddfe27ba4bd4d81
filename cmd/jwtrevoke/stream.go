package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jwtrevoke/jwtrevoke/internal/process"
	"github.com/jwtrevoke/jwtrevoke/internal/revoker"
	"github.com/jwtrevoke/jwtrevoke/pkg/events"
)

// connect opens NATS for a command: it fails within 5 s instead of
// retrying for ever as a service does.
func connect(url, creds string) (*nats.Conn, jetstream.JetStream, error) {
	return process.ConnectNATS(url, creds, nats.Name("jwtrevoke-cli"), nats.Timeout(5*time.Second))
}

// tailLine is one event as tail -o json prints it.
type tailLine struct {
	Seq   uint64       `json:"seq"`
	Event events.Event `json:"event"`
}

// tail runs "tail [-from-start] [-n N]": the stream's events, decoded, one
// line each, until ctx ends or N were printed.
func tail(ctx context.Context, url, creds string, args []string, asJSON bool, stdout io.Writer, fail func(int, string, ...any) int) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fromStart := fs.Bool("from-start", false, "from the stream's first event instead of the next one")
	n := fs.Int("n", 0, "stop after N events (0: follow until interrupted)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *n < 0 {
		return fail(exitUsage, "tail: takes -from-start and -n N only")
	}
	nc, js, err := connect(url, creds)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	defer nc.Close()
	policy := jetstream.DeliverNewPolicy
	if *fromStart {
		policy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, events.DefaultStreamName, jetstream.OrderedConsumerConfig{DeliverPolicy: policy})
	if err != nil {
		return fail(exitFailed, "the revocation stream: %v", err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	defer it.Stop()
	go func() { <-ctx.Done(); it.Stop() }()
	for printed := 0; *n == 0 || printed < *n; {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil {
				return exitOK
			}
			return fail(exitFailed, "%v", err)
		}
		meta, _ := m.Metadata()
		var seq uint64
		if meta != nil {
			seq = meta.Sequence.Stream
		}
		evs, err := events.MsgEvents(m.Subject(), m.Data())
		if err != nil {
			fmt.Fprintf(stdout, "%d\t(undecodable: %v)\n", seq, err)
			printed++
			continue
		}
		// A batch message's events share its sequence: one line each.
		for _, ev := range evs {
			if *n > 0 && printed == *n {
				break
			}
			printed++
			if asJSON {
				printJSONLine(stdout, tailLine{Seq: seq, Event: ev})
				continue
			}
			iss := ev.Issuer
			if iss == "" {
				iss = "-"
			}
			value := ev.Value()
			if ev.Kind == events.KindScope {
				value = ev.Claim + "=" + value
			}
			fmt.Fprintf(stdout, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", seq, ev.IssuedAt.Format(time.RFC3339Nano), ev.Kind, value, iss,
				or(ev.Reason, "-"), or(ev.Initiator, "-"))
		}
	}
	return exitOK
}

// statusAnswer is what status -o json prints.
type statusAnswer struct {
	Stream   revoker.StreamView `json:"stream"`
	Replicas []statusReplica    `json:"replicas"`
}

type statusReplica struct {
	revoker.Replica
	// Lag is how many stream sequences the replica has yet to apply.
	Lag uint64 `json:"lag"`
}

// status runs "status": the stream (over NATS) and the fleet (from the
// revoker), with each replica's lag behind the stream's head.
func status(ctx context.Context, c *revoker.Client, url, creds string, asJSON bool, stdout io.Writer, fail func(int, string, ...any) int) int {
	nc, js, err := connect(url, creds)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, events.DefaultStreamName)
	if err != nil {
		return fail(exitFailed, "the revocation stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fail(exitFailed, "the revocation stream: %v", err)
	}
	fleet, err := c.Replicas(ctx)
	if err != nil {
		return fail(exitFailed, "%v", err)
	}
	a := statusAnswer{Stream: revoker.NewStreamView(info), Replicas: []statusReplica{}}
	for _, r := range fleet.Replicas {
		a.Replicas = append(a.Replicas, statusReplica{Replica: r, Lag: r.Lag(a.Stream.LastSeq)})
	}
	if asJSON {
		return printJSON(stdout, a)
	}
	fmt.Fprintf(stdout, "stream %s: last seq %d, %d messages, %d bytes, %d replicas", a.Stream.Name, a.Stream.LastSeq, a.Stream.Messages, a.Stream.Bytes, a.Stream.Replicas)
	if len(a.Stream.Peers) > 0 {
		fmt.Fprintf(stdout, ", leader %s (peers %s)", a.Stream.Leader, strings.Join(a.Stream.Peers, ", "))
	}
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSERVICE\tDECIDING\tAPPLIED\tLAG\tSTALENESS\tHELD")
	for _, r := range a.Replicas {
		fmt.Fprintf(tw, "%s\t%s\t%t\t%d\t%d\t%s\t%d\n", r.ID, r.Service, r.Deciding, r.AppliedSeq, r.Lag,
			time.Duration(r.StalenessMs)*time.Millisecond, r.Held)
	}
	_ = tw.Flush()
	return exitOK
}
