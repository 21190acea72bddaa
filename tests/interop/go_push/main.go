// Pushes with the official Go client (github.com/prometheus/client_golang/prometheus/push),
// which sends the delimited protobuf format. Driven by tests/it/pushgateway.rs.
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	url := os.Args[1]
	reg := prometheus.NewRegistry()
	jobs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "go_jobs_processed_total", Help: "Jobs done."}, []string{"queue"})
	secs := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "go_job_seconds", Help: "Job time.", Buckets: []float64{0.1, 0.5, 1}})
	last := prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_last_success_unixtime", Help: "When."})
	reg.MustRegister(jobs, secs, last)
	jobs.WithLabelValues("emails").Add(3)
	secs.Observe(0.05)
	secs.Observe(0.7)
	last.Set(123)
	pusher := push.New(url, "gobatch").Gatherer(reg).Grouping("instance", "worker-1")
	must(pusher.Push())
	jobs.WithLabelValues("emails").Add(2)
	secs.Observe(0.3)
	must(pusher.Add())
	// After a DELETE the group's totals count whole again.
	must(pusher.Delete())
	must(pusher.Push())
}
