// The OpenTelemetry JS SDK exporting to perfwatch's /v1/metrics: a histogram, a counter, an
// up-down counter and an observable gauge, exported twice (so cumulative streams are seen
// moving). Usage: node otel.js URL http|proto cumulative|delta explicit|exponential SERVICE
const { MeterProvider, PeriodicExportingMetricReader, AggregationType, InstrumentType } = require('@opentelemetry/sdk-metrics');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const http = require('@opentelemetry/exporter-metrics-otlp-http');
const proto = require('@opentelemetry/exporter-metrics-otlp-proto');

async function main() {
  const [url, protocol, temporality, histograms, service] = process.argv.slice(2);
  const Exporter = protocol === 'proto' ? proto.OTLPMetricExporter : http.OTLPMetricExporter;
  const exporter = new Exporter({
    url: `${url}/v1/metrics`,
    temporalityPreference:
      temporality === 'delta' ? http.AggregationTemporalityPreference.DELTA : http.AggregationTemporalityPreference.CUMULATIVE,
  });
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3600000 });
  const views =
    histograms === 'exponential'
      ? [{ instrumentType: InstrumentType.HISTOGRAM, aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }]
      : [];
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'service.version': '1.2.3' }),
    readers: [reader],
    views,
  });
  const meter = provider.getMeter('perfwatch-interop');
  const duration = meter.createHistogram('checkout.duration', { unit: 'ms' });
  const orders = meter.createCounter('orders');
  const sessions = meter.createUpDownCounter('active.sessions');
  meter.createObservableGauge('pool.in_use').addCallback((result) => result.observe(42, { pool: 'primary' }));

  const record = () => {
    for (let ms = 10; ms <= 100; ms += 10) duration.record(ms, { route: '/checkout' });
  };
  record();
  orders.add(3, { shop: 'bride' });
  sessions.add(5);
  sessions.add(-2);
  await provider.forceFlush();

  record();
  orders.add(2, { shop: 'bride' });
  sessions.add(1);
  await provider.forceFlush();
  await provider.shutdown();
  console.log(JSON.stringify({ ok: true }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
