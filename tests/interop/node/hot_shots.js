// hot-shots (DogStatsD) over UDP: timings, histograms, distributions, counters, gauges and sets,
// with tags and sample rates. Usage: node hot_shots.js PORT
const StatsD = require('hot-shots');

// hot-shots drops sampled lines at random; always sending them makes the counts exact.
Math.random = () => 0;

const client = new StatsD({
  host: '127.0.0.1',
  port: Number(process.argv[2]),
  globalTags: { env: 'test' },
  errorHandler: (err) => {
    console.error(err);
    process.exit(1);
  },
});

client.timing('checkout_duration', 120, { shop: 'bride' });
client.timing('checkout_duration', 80, 0.5, { shop: 'bride' });
client.histogram('payload_bytes', 512, { shop: 'bride' });
client.distribution('render_seconds', 0.25);
client.increment('orders', 3, { shop: 'bride' });
client.increment('orders', 1, 0.25, { shop: 'bride' });
client.gauge('queue_depth', 7);
['ana', 'ben', 'ana'].forEach((who) => client.set('visitors', who));
client.close((err) => {
  if (err) {
    console.error(err);
    process.exit(1);
  }
  console.log(JSON.stringify({ ok: true }));
});
