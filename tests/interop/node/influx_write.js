// The InfluxDB client library writing line protocol to perfwatch's /api/v2/write.
// Usage: node influx_write.js URL TOKEN
const { InfluxDB, Point } = require('@influxdata/influxdb-client');

async function main() {
  const [url, token] = process.argv.slice(2);
  const writeApi = new InfluxDB({ url, token }).getWriteApi('platform', 'metrics', 'ms');
  writeApi.useDefaultTags({ region: 'eu' });
  writeApi.writePoint(new Point('db_pool').tag('pool', 'primary').intField('in_use', 48).floatField('utilisation', 0.96));
  writeApi.writePoint(new Point('db_pool').tag('pool', 'replica').intField('in_use', 12).floatField('utilisation', 0.4));
  writeApi.writeRecord('cache,tier=l1 hit_ratio=0.9');
  await writeApi.close();
  console.log(JSON.stringify({ ok: true }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
