// Drives Debian's chromium through playwright-core for tests/it/browser.rs: opens the status
// page and an alert page at a phone's width and a desktop's, measures horizontal overflow,
// saves full-page screenshots, reads the alert chart's SVG and the timeline, follows the
// status page's link to the alert, acknowledges through the form, and checks that the pages
// refuse a browser without credentials. Prints one JSON object; the Rust test asserts on it.
//
//   node browse.mjs '{"base": "http://127.0.0.1:1234", "password": "…", "alertId": "…",
//                     "outDir": "/tmp/shots", "by": "Ana Silva", "comment": "…"}'
import { chromium } from 'playwright-core';

const job = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const out = { overflow: {}, screenshots: [] };

async function context(width, credentials) {
  return browser.newContext({
    viewport: { width, height: 900 },
    deviceScaleFactor: 1,
    httpCredentials: credentials ? { username: 'on-call', password: job.password } : undefined,
  });
}

async function visit(page, path, name, width) {
  const response = await page.goto(job.base + path);
  if (response.status() !== 200) throw new Error(`${path} answered ${response.status()}`);
  out.overflow[`${name}-${width}`] = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  const file = `${job.outDir}/${name}-${width}.png`;
  await page.screenshot({ path: file, fullPage: true });
  out.screenshots.push(file);
}

// The measured chart's scale and what it draws, as the SVG's attributes say.
async function chart(page) {
  return page.evaluate(() => {
    const svg = document.querySelector('#measured svg');
    const attr = (el, name) => el && el.getAttribute(name);
    const threshold = svg.querySelector('line.level.threshold');
    const firing = svg.querySelector('rect.band.firing');
    return {
      from: Number(attr(svg, 'data-from')), to: Number(attr(svg, 'data-to')),
      min: Number(attr(svg, 'data-min')), max: Number(attr(svg, 'data-max')),
      plot: attr(svg, 'data-plot').split(' ').map(Number),
      thresholdY: threshold ? Number(attr(threshold, 'y1')) : null,
      firingX: firing ? Number(attr(firing, 'x')) : null,
      // Where the browser laid the band out, to check the drawing is visible, not just present.
      firingWidthPx: firing ? firing.getBoundingClientRect().width : 0,
    };
  });
}

async function timeline(page) {
  return page.$$eval('ol.timeline > li', items => items.map(li => ({
    at: Number(li.dataset.at), class: li.className, notification: li.dataset.notification || null,
    what: li.querySelector('strong').textContent, text: li.textContent,
  })));
}

for (const width of [1280, 390]) {
  const ctx = await context(width, true);
  const page = await ctx.newPage();
  await visit(page, '/', 'status', width);
  await visit(page, `/alerts/${job.alertId}`, 'alert', width);
  if (width === 390) {
    out.chart = await chart(page);
    out.timeline = await timeline(page);
    // From the status page's active alerts, the link leads to this alert's page.
    await page.goto(job.base + '/');
    await page.click(`a[href="alerts/${job.alertId}"]`);
    out.followedTo = new URL(page.url()).pathname;
    // Acknowledge through the form, as a person on a phone would.
    await page.fill('form.ack input[name="by"]', job.by);
    await page.fill('form.ack input[name="comment"]', job.comment);
    await Promise.all([page.waitForURL(`**/alerts/${job.alertId}#timeline`), page.click('form.ack button')]);
    out.afterAck = {
      acked: await page.$eval('dd.acked', dd => dd.textContent).catch(() => null),
      timeline: await timeline(page),
      offersUnack: (await page.$('form.unack')) !== null,
    };
  }
  await ctx.close();
}

// Without credentials the browser is refused and asked for them.
const anonymous = await context(390, false);
const lonely = await anonymous.newPage();
// Chromium gives up the navigation once no credentials answer the challenge; the 401 itself
// is what the browser got.
const answered = lonely.waitForResponse(r => r.url().endsWith(`/alerts/${job.alertId}`));
await lonely.goto(job.base + `/alerts/${job.alertId}`).catch(() => {});
const refused = await answered;
out.anonymous = { status: refused.status(), challenge: refused.headers()['www-authenticate'] || null };
await anonymous.close();

await browser.close();
console.log(JSON.stringify(out));
