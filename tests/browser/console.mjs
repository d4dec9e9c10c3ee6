// Drives headless Chromium through the admin console of a running filegate.
// Usage: node console.mjs BASE_URL PASSWORD SCREENSHOT_DIR
// Prints one line per check and a closing "N passed, N failed" line; exits 1 on failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, password, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext();
const page = await context.newPage();
let passed = 0, failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    const file = `${shots}/${name.replace(/[^a-z0-9]+/gi, '-')}.png`;
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.log(`FAIL ${name}: ${e.message.split('\n')[0]} (screenshot ${file})`);
  }
}
function expect(cond, msg) { if (!cond) throw new Error(msg); }

await check('console redirects to the login page', async () => {
  await page.goto(`${base}/admin`);
  expect(page.url().endsWith('/admin/login'), `at ${page.url()}`);
  expect(await page.isVisible('#login'), 'login form visible');
});

await check('wrong password is refused', async () => {
  await page.fill('#password', 'not the password');
  await page.click('#login-submit');
  expect((await page.textContent('#login-error')).includes('Wrong'), 'error shown');
});

await check('log in', async () => {
  await page.fill('#password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#stats');
  expect(page.url().endsWith('/admin'), `at ${page.url()}`);
});

await check('session cookie is HttpOnly and SameSite=Strict', async () => {
  const c = (await context.cookies()).find(c => c.name === 'filegate_session');
  expect(c, 'session cookie set');
  expect(c.httpOnly, 'HttpOnly');
  expect(c.sameSite === 'Strict', `SameSite=${c.sameSite}`);
  expect(await page.evaluate(() => !document.cookie.includes('filegate_session')), 'invisible to scripts');
});

let createdId = '';
await check('create an application and see its secret once', async () => {
  await page.click('nav >> text=Applications');
  await page.fill('#app-name', 'browser-made');
  await page.check('input[value=autograph]');
  await page.click('#create-app-submit');
  const secret = (await page.textContent('#created-secret')).trim();
  createdId = (await page.textContent('#created-id')).trim();
  expect(secret.length === 44, `secret ${secret}`);
  await page.goto(`${base}/admin/apps`);
  expect(!(await page.content()).includes(secret), 'secret not shown again');
});

await check('disable the application', async () => {
  await page.click(`tr[data-id="${createdId}"] button`);
  await page.waitForURL(`${base}/admin/apps`);
  expect((await page.textContent(`tr[data-id="${createdId}"]`)).includes('disabled'), 'shown disabled');
});

await check('a form with a forged CSRF token is refused', async () => {
  await page.evaluate(() => { document.querySelector('#create-app input[name=csrf]').value = 'forged'; });
  await page.fill('#app-name', 'should-not-exist');
  await page.click('#create-app-submit');
  expect((await page.textContent('h1')).includes('Refused'), 'refusal page');
  await page.goto(`${base}/admin/apps`);
  expect(!(await page.content()).includes('should-not-exist'), 'nothing created');
});

await check('readable at 320 px without horizontal scrolling', async () => {
  await page.setViewportSize({ width: 320, height: 640 });
  for (const path of ['/admin', '/admin/apps']) {
    await page.goto(`${base}${path}`);
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(w <= 320, `${path} is ${w}px wide`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
});

await check('keyboard reaches the login form fields by label', async () => {
  const labelled = await page.evaluate(() =>
    [...document.querySelectorAll('input:not([type=hidden]),select')].every(i => i.labels && i.labels.length > 0));
  expect(labelled, 'every input has a label');
});

await check('log out', async () => {
  await page.click('#logout button');
  await page.waitForURL(`${base}/admin/login`);
  await page.goto(`${base}/admin`);
  expect(page.url().endsWith('/admin/login'), 'session ended');
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
