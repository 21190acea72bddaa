// prom-client's Pushgateway class against perfwatch's Pushgateway paths: pushAdd (POST),
// push (PUT) and delete, with a counter, a gauge and a histogram. Usage: node prom_client_push.js URL
const client = require('prom-client');

async function main() {
  const url = process.argv[2];
  const registry = new client.Registry();
  const orders = new client.Counter({ name: 'orders_total', help: 'orders', labelNames: ['shop'], registers: [registry] });
  const queue = new client.Gauge({ name: 'queue_depth', help: 'queue', registers: [registry] });
  const latency = new client.Histogram({
    name: 'checkout_seconds', help: 'checkout', buckets: [0.1, 0.25, 0.5, 1], registers: [registry],
  });
  const gateway = new client.Pushgateway(url, {}, registry);
  const groupings = { instance: 'node-1' };

  orders.inc({ shop: 'bride' }, 3);
  queue.set(5);
  [0.05, 0.2, 0.3].forEach((v) => latency.observe(v));
  await gateway.pushAdd({ jobName: 'checkout', groupings });

  // Cumulative: the counter is now 5, so this push adds 2; the histogram did not move.
  orders.inc({ shop: 'bride' }, 2);
  queue.set(4);
  await gateway.push({ jobName: 'checkout', groupings });

  // Deleting the group forgets its cumulative state: pushed again, the counter's 5 counts anew.
  await gateway.delete({ jobName: 'checkout', groupings });
  await gateway.pushAdd({ jobName: 'checkout', groupings });
  console.log(JSON.stringify({ ok: true }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
