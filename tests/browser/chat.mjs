// Two browser pages chat through the example's page: log in, join a room, send and
// receive, see a validation error under the input, and run a quick poll (one asks, the
// other answers in the question's box, the first sees the result). Takes a screenshot of
// each page.
// Usage: node chat.mjs <base-url> <screenshot-dir>
import { chromium } from 'playwright-core';

const [base, shots] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
const timeout = 15000;

async function login(name) {
  const page = await browser.newPage();
  page.setDefaultTimeout(timeout);
  await page.goto(base);
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
  const bob = await login('bob');

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

  await alice.screenshot({ path: `${shots}/alice.png`, fullPage: true });
  await bob.screenshot({ path: `${shots}/bob.png`, fullPage: true });
  console.log(JSON.stringify({ ok: true, validation: error, poll }));
} finally {
  await browser.close();
}
