package process

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Main is the run of every jwtrevoke binary: parse reads its settings and
// says the log level and format (flag.ErrHelp, after -h, exits 0), then
// serve runs it with that logger until it stops. An error before the
// logger exists goes to stderr as "name: error"; serve's is logged as
// "name stopped". The exit status is 0, or 1 on any error.
func Main(name string, stderr io.Writer, parse func() (level, format string, err error), serve func(*slog.Logger) error) int {
	level, format, err := parse()
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	log, err := Logger(level, format, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if err := serve(log); err != nil {
		log.Error(name+" stopped", "err", err)
		return 1
	}
	return 0
}
