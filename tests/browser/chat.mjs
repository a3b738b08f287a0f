// Two browser pages chat through the example's page: log in, join a room, send and
// receive, see a validation error under the input, and run a quick poll (one asks, the
// other answers in the question's box, the first sees the result), then one page goes
// offline (its connection cut by a TCP proxy it reaches the server through, which refuses
// it meanwhile), the other sends while it is away, and once it is back the page shows each
// of those messages once. Takes a screenshot of each page.
// Usage: node chat.mjs <base-url> <screenshot-dir>
import net from 'node:net';
import { chromium } from 'playwright-core';

const [base, shots] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
const timeout = 15000;

// Bob's network: a proxy to the server that can go offline. Chromium's own offline
// emulation leaves open WebSockets alone, so the cut is made on the wire.
const target = new URL(base);
const links = new Set();
let offline = false;
const proxy = net.createServer((inbound) => {
  if (offline) return inbound.destroy();
  const outbound = net.connect(Number(target.port), target.hostname);
  links.add(inbound).add(outbound);
  for (const [a, b] of [[inbound, outbound], [outbound, inbound]]) {
    a.pipe(b);
    a.on('error', () => b.destroy());
    a.on('close', () => { b.destroy(); links.delete(a); });
  }
});
await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
const proxied = `http://127.0.0.1:${proxy.address().port}/`;
function goOffline() {
  offline = true;
  for (const socket of links) socket.destroy();
}

async function login(name, url = base) {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeout);
  await page.goto(url);
  await page.fill('#username', name);
  await page.fill('#password', 'password');
  await page.click('#login button');
  await page.waitForSelector('#chat:not([hidden])');
  await page.click('#join button');
  await page.waitForSelector('#messages li.system:has-text("joined lobby")');
  return page;
}

try {
  const alice = await login('alice');
  const bob = await login('bob', proxied);

  await alice.fill('#text', 'Hello Bob!');
  await alice.click('#send button');
  await bob.waitForSelector('#messages li:has-text("Hello Bob!")');
  await alice.waitForSelector('#messages li:has-text("Hello Bob!")');
  const from = await bob.textContent('#messages li:has-text("Hello Bob!") b');
  if (from !== 'alice:') throw new Error(`expected the message from alice, got ${from}`);

  await bob.fill('#text', 'Hi Alice');
  await bob.click('#send button');
  await alice.waitForSelector('#messages li:has-text("Hi Alice")');

  // An empty message fails validation: the error shows under the input.
  await bob.click('#send button');
  await bob.waitForSelector('#text-error:has-text("text")');
  const error = await bob.textContent('#text-error');

  // A quick poll: Alice asks, Bob answers in the box under the question, Alice sees who
  // answered what (Bob being the only other member, without waiting for the timeout).
  await alice.fill('#question', 'Pizza tonight?');
  await alice.click('#poll button');
  const asked = '#messages li.question:has-text("Pizza tonight?")';
  await bob.waitForSelector(asked);
  const asker = await bob.textContent(`${asked} b`);
  if (asker !== 'alice asks:') throw new Error(`expected alice's question, got ${asker}`);
  await bob.fill(`${asked} input.answer`, 'Yes please');
  await bob.click(`${asked} button`);
  await bob.waitForSelector(`${asked} i.answered`);
  await alice.waitForSelector('#messages li.poll:has-text("Pizza tonight?") li:has-text("bob: Yes please")');
  const poll = await alice.textContent('#messages li.poll');

  // Bob's page goes offline; Alice sends while it is away; it comes back and recovers.
  goOffline();
  await bob.waitForSelector('#status:has-text("reconnecting")');
  const away = ['While you were out 1', 'While you were out 2', 'While you were out 3'];
  for (const text of away) {
    await alice.fill('#text', text);
    await alice.click('#send button');
    await alice.waitForSelector(`#messages li:has-text("${text}")`);
  }
  offline = false;
  await bob.waitForSelector('#status:has-text("nothing missed")');
  await alice.fill('#text', 'Welcome back');
  await alice.click('#send button');
  await bob.waitForSelector('#messages li:has-text("Welcome back")');
  const seen = await bob.$$eval('#messages li', (items) => items.map((li) => li.textContent));
  for (const text of away) {
    const count = seen.filter((line) => line.includes(text)).length;
    if (count !== 1) throw new Error(`"${text}" shown ${count} times on Bob's page: ${JSON.stringify(seen)}`);
  }
  const order = away.map((text) => seen.findIndex((line) => line.includes(text)));
  if (order.some((at, i) => i > 0 && at < order[i - 1])) throw new Error(`out of order: ${JSON.stringify(seen)}`);
  const recovered = await bob.textContent('#status');

  await alice.screenshot({ path: `${shots}/alice.png`, fullPage: true });
  await bob.screenshot({ path: `${shots}/bob.png`, fullPage: true });
  console.log(JSON.stringify({ ok: true, validation: error, poll, recovered }));
} finally {
  await browser.close();
  proxy.close();
  for (const socket of links) socket.destroy();
}
