// Package prommetrics serves OpenTelemetry metrics in the Prometheus text
// format. It lives apart from httpx so that pkg/verifier, which uses httpx's
// bearer parser and error writer, does not link the Prometheus client and
// the OpenTelemetry SDK into every service that embeds it.
package prommetrics

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// New returns a MeterProvider whose instruments are served by the
// returned /metrics handler in the Prometheus text format. Each call has its
// own registry: nothing is registered globally, so several services can run
// in one process (dev mode).
func New() (*sdkmetric.MeterProvider, http.Handler, error) {
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, nil, fmt.Errorf("prommetrics: %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return mp, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
