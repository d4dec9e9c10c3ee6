// Drives headless Chromium through the admin console of a running filegate.
// Usage: node console.mjs BASE_URL PASSWORD SCREENSHOT_DIR
// Prints one line per check and a closing "N passed, N failed" line; exits 1 on failure.
// A failing check leaves a full-page screenshot of where it stood in SCREENSHOT_DIR.
import { chromium } from 'playwright-core';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, password, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'filegate-browser-'));

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
const text = async sel => ((await page.textContent(sel)) || '').trim();
const sha256 = b => createHash('sha256').update(b).digest('hex');

/// Reloads `path` until `sel` is on the page: the audit trail is written in batches.
async function eventually(path, sel) {
  for (let i = 0; i < 100; i++) {
    await page.goto(`${base}${path}`);
    if (await page.$(sel)) return;
    await page.waitForTimeout(200);
  }
  throw new Error(`${sel} never showed on ${path}`);
}

/// Fills the link maker for `fileId` with `opts` and returns the link it shows.
async function makeLink(fileId, opts = {}) {
  await page.goto(`${base}/admin/links?file_id=${fileId}`);
  expect((await page.inputValue('#link-file')) === fileId, 'link maker prefilled with the file');
  if (opts.streaming) await page.check('#link-streaming');
  if (opts.antiFraud) await page.check('#link-anti-fraud');
  if (opts.tag) await page.fill('#link-tag', opts.tag);
  await page.selectOption('#link-valid', '3600');
  await page.click('#link-submit');
  await page.waitForSelector('#issued');
  return page.inputValue('#link-0');
}

await check('console redirects to the login page', async () => {
  await page.goto(`${base}/admin`);
  expect(page.url().endsWith('/admin/login'), `at ${page.url()}`);
  expect(await page.isVisible('#login'), 'login form visible');
});

await check('wrong password is refused', async () => {
  await page.fill('#password', 'not the password');
  await page.click('#login-submit');
  expect((await text('#login-error')).includes('Wrong'), 'error shown');
});

await check('log in', async () => {
  await page.fill('#password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#stats');
  expect(page.url().endsWith('/admin'), `at ${page.url()}`);
});

let sessionCookie = '';
await check('session cookie is HttpOnly and SameSite=Strict', async () => {
  const c = (await context.cookies()).find(c => c.name === 'filegate_session');
  expect(c, 'session cookie set');
  sessionCookie = c.value;
  expect(c.httpOnly, 'HttpOnly');
  expect(c.sameSite === 'Strict', `SameSite=${c.sameSite}`);
  expect(!c.secure, 'not Secure over plain http on loopback');
  expect(await page.evaluate(() => !document.cookie.includes('filegate_session')), 'invisible to scripts');
});

let createdId = '';
await check('create an application and see its secret once', async () => {
  await page.click('nav >> text=Applications');
  await page.fill('#app-name', 'browser-made');
  await page.check('input[value=autograph]');
  await page.click('#create-app-submit');
  const secret = await text('#created-secret');
  createdId = await text('#created-id');
  expect(secret.length === 44, `secret ${secret}`);
  await page.goto(`${base}/admin/apps`);
  expect(!(await page.content()).includes(secret), 'secret not shown again');
});

await check('disable the application', async () => {
  await page.click(`tr[data-id="${createdId}"] button`);
  await page.waitForURL(`${base}/admin/apps`);
  expect((await text(`tr[data-id="${createdId}"]`)).includes('disabled'), 'shown disabled');
});

await check('a form with a forged CSRF token is refused', async () => {
  await page.evaluate(() => { document.querySelector('#create-app input[name=csrf]').value = 'forged'; });
  await page.fill('#app-name', 'should-not-exist');
  await page.click('#create-app-submit');
  expect((await text('h1')).includes('Refused'), 'refusal page');
  await page.goto(`${base}/admin/apps`);
  expect(!(await page.content()).includes('should-not-exist'), 'nothing created');
});

// A text file, so that a streaming (inline) link shows it in the tab.
const content = `filegate browser test ${randomBytes(8).toString('hex')}\n`.repeat(4000);
const uploadPath = join(work, 'notes from the browser.txt');
writeFileSync(uploadPath, content);
let fileId = '';
await check('upload a file through the form, with the progress bar', async () => {
  await page.goto(`${base}/admin/files`);
  await page.fill('#upload-key', 'browser/notes.txt');
  await page.setInputFiles('#upload-file', uploadPath);
  // Remember (across the navigation) that the script showed the progress bar.
  await page.evaluate(() => {
    const box = document.querySelector('#upload-progress');
    new MutationObserver(() => {
      if (!box.hidden) sessionStorage.setItem('progress-shown', '1');
    }).observe(box, { attributes: true });
  });
  await page.click('#upload-submit');
  await page.waitForURL(/\/admin\/files\/[0-9a-f]{24}\?done=uploaded$/);
  fileId = page.url().match(/files\/([0-9a-f]{24})/)[1];
  expect(await page.evaluate(() => sessionStorage.getItem('progress-shown')) === '1', 'progress bar shown');
  expect((await text('#notice')).includes('stored'), 'notice');
  expect((await text('#file-name')) === 'notes from the browser.txt', 'display name');
  expect((await text('#file-fields')).includes(sha256(content)), 'sha256 of the bytes sent');
});

await check('search finds the file by object key, by keyboard only', async () => {
  await page.goto(`${base}/admin/files`);
  let focused = '';
  for (let i = 0; i < 40 && focused !== 'q'; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  }
  expect(focused === 'q', 'Tab reaches the search field');
  await page.keyboard.type('BROWSER/NOTES');
  await page.keyboard.press('Enter');
  await page.waitForURL(/q=BROWSER/);
  expect(await page.$(`#files tr[data-id="${fileId}"]`), 'found, case-insensitively');
  await page.goto(`${base}/admin/files?q=no-such-name`);
  expect(!(await page.$(`#files tr[data-id="${fileId}"]`)), 'not found by another name');
});

let streamingLink = '';
await check('make a streaming link and open it', async () => {
  await page.goto(`${base}/admin/files/${fileId}`);
  await page.click('#make-link');
  await page.waitForURL(/\/admin\/links\?file_id=/);
  streamingLink = await makeLink(fileId, { streaming: true });
  expect(streamingLink.startsWith(`${base}/d/`), streamingLink);
  const res = await context.request.get(streamingLink);
  expect(res.status() === 200, `status ${res.status()}`);
  expect(res.headers()['content-disposition'].startsWith('inline'), res.headers()['content-disposition']);
  expect(sha256(await res.body()) === sha256(content), 'the same bytes');
  const shown = await page.goto(streamingLink);
  expect(shown.status() === 200, `opened: ${shown.status()}`);
  expect((await page.textContent('body')).includes(content.slice(0, 60)), 'shown in the tab');
});

await check('rotate the signing key; earlier links keep working', async () => {
  await page.goto(`${base}/admin/keys`);
  const before = await page.$$eval('#keys tbody tr', rows => rows.map(r => Number(r.dataset.id)));
  await page.click('#rotate-submit');
  await page.waitForURL(/done=rotated/);
  const current = await page.getAttribute('#keys tr[data-state=current]', 'data-id');
  expect(Number(current) === Math.max(...before) + 1, `new current key ${current} after ${before}`);
  expect(await page.getAttribute(`#keys tr[data-id="${Math.max(...before)}"]`, 'data-state') === 'active', 'old key still active');
  expect((await context.request.get(streamingLink)).status() === 200, 'link signed before the rotation');
});

await check('a POST without the CSRF token, or with a wrong one, changes nothing', async () => {
  await page.goto(`${base}/admin/keys`);
  const count = async () => (await page.$$('#keys tbody tr')).length;
  const n = await count();
  const none = await context.request.post(`${base}/admin/keys/rotate`, { form: {}, maxRedirects: 0 });
  expect(none.status() === 403, `no token: ${none.status()}`);
  const wrong = await context.request.post(`${base}/admin/keys/rotate`, { form: { csrf: 'x'.repeat(43) }, maxRedirects: 0 });
  expect(wrong.status() === 403, `wrong token: ${wrong.status()}`);
  await page.evaluate(() => { document.querySelector('#rotate input[name=csrf]').value = 'forged'; });
  await page.click('#rotate-submit');
  expect((await text('h1')).includes('Refused'), 'refusal page');
  await page.goto(`${base}/admin/keys`);
  expect((await count()) === n, 'no key created');
});

await check('import a fraud list file and check an address', async () => {
  const listPath = join(work, 'blocklist.txt');
  writeFileSync(listPath, '# addresses this test connects from\n127.0.0.1\n::1\n');
  await page.goto(`${base}/admin/fraud`);
  await page.selectOption('#import-list', 'blocklist');
  await page.fill('#import-source', 'browser');
  await page.setInputFiles('#import-file', listPath);
  await page.click('#import-submit');
  await page.waitForURL(/done=imported/);
  expect((await text('[data-list=blocklist] [data-source=browser] h3')).includes('2 entries'), 'source listed');
  await page.fill('#check-ip', '127.0.0.1');
  await page.click('#check-submit');
  expect((await text('#check-result')).includes('is on: blocklist'), await text('#check-result'));
});

await check('an anti-fraud link is refused to a listed client', async () => {
  const link = await makeLink(fileId, { antiFraud: true });
  const res = await page.goto(link);
  expect(res.status() === 403, `status ${res.status()}`);
  expect((await text('h1')).includes('denied'), 'a refusal page, no file');
  const again = await context.request.get(link, { headers: { accept: 'application/json' } });
  const body = await again.json();
  expect(again.status() === 403 && body.error.reason === 'blocked_ip', JSON.stringify(body));
});

await check('the refusal shows in the audit trail, and filters work', async () => {
  await eventually('/admin/audit?refused=true', '#downloads tr[data-reason=blocked_ip]');
  const row = await text('#downloads tr[data-reason=blocked_ip]');
  expect(row.includes(fileId) && row.includes('403'), row);
  await page.selectOption('#f-refused', 'false');
  await page.fill('#f-reason', '');
  await page.click('#audit-filter-submit');
  expect(!(await page.$('#downloads tr[data-reason=blocked_ip]')), 'deliveries only');
  await eventually(`/admin/audit?file_id=${fileId}&refused=false`, '#downloads tr[data-reason=""]');
  await page.goto(`${base}/admin`);
  expect(Number(await text('#stat-refused')) >= 1, 'dashboard counts the refusal');
  expect((await text('#refusals')).includes('blocked_ip'), 'by reason');
});

await check('remove a range again', async () => {
  await page.goto(`${base}/admin/fraud`);
  await page.click('[data-source=browser] button[aria-label="Remove 127.0.0.1/32 from browser"]');
  await page.waitForURL(/done=entry_removed/);
  expect((await text('[data-list=blocklist] [data-source=browser] h3')).includes('1 entries'), 'one left');
});

// AutoGraph: a copy downloaded through a tagged link made in the console traces back
// to that link and its download on the backtraces page.
const markedContent = `filegate AutoGraph browser test ${randomBytes(8).toString('hex')}\n`.repeat(500);
const markedPath = join(work, 'marked original.txt');
writeFileSync(markedPath, markedContent);
const tag = 'customer-4711';
let markedId = '';
let copyPath = '';
let copyLength = 0;
let backtracePath = '';

/// Remembers (across the navigation) that the script showed the form's progress bar.
async function watchProgress(sel) {
  await page.evaluate(sel => {
    sessionStorage.removeItem('progress-shown');
    const box = document.querySelector(sel);
    new MutationObserver(() => {
      if (!box.hidden) sessionStorage.setItem('progress-shown', '1');
    }).observe(box, { attributes: true });
  }, sel);
}

await check('upload with AutoGraph enabled; the file says so', async () => {
  await page.goto(`${base}/admin/files`);
  await page.fill('#upload-key', 'browser/marked.txt');
  await page.check('#upload-autograph');
  await page.setInputFiles('#upload-file', markedPath);
  await page.click('#upload-submit');
  await page.waitForURL(/\/admin\/files\/[0-9a-f]{24}\?done=uploaded$/);
  markedId = page.url().match(/files\/([0-9a-f]{24})/)[1];
  const autograph = await page.evaluate(() =>
    [...document.querySelectorAll('#file-fields tr')]
      .find(r => r.querySelector('th').textContent === 'autograph').querySelector('td').textContent);
  expect(autograph === 'true', `autograph: ${autograph}`);
  await page.goto(`${base}/admin/files`);
  expect((await text(`#files tr[data-id="${markedId}"] .badge`)) === 'AutoGraph', 'badge in the list');
  expect(!(await page.$(`#files tr[data-id="${fileId}"] .badge`)), 'no badge on a plain file');
});

await check('a tag on a file without AutoGraph shows the API refusal', async () => {
  await page.goto(`${base}/admin/links?file_id=${fileId}`);
  await page.fill('#link-tag', tag);
  await page.click('#link-submit');
  await page.waitForSelector('#error');
  expect((await text('#error')).includes('autograph_not_enabled'), await text('#error'));
  expect(!(await page.$('#issued')), 'no link issued');
});

await check('make a tagged link and download the copy', async () => {
  const link = await makeLink(markedId, { tag });
  expect((await text('#issued')).includes(`tagged "${tag}"`), await text('#issued'));
  const got = await page.evaluate(async url => {
    const r = await fetch(url);
    return { status: r.status, bytes: Array.from(new Uint8Array(await r.arrayBuffer())) };
  }, link);
  expect(got.status === 200, `status ${got.status}`);
  const copy = Buffer.from(got.bytes);
  copyLength = copy.length;
  expect(copyLength > markedContent.length, 'a marked copy is longer than the file');
  expect(copy.subarray(0, markedContent.length).toString() === markedContent, 'the file, then its mark');
  copyPath = join(work, 'found on the internet.txt');
  writeFileSync(copyPath, copy);
});

await check('trace the copy on the backtraces page: the tag, the file and the download', async () => {
  await page.goto(`${base}/admin`);
  await page.click('nav >> text=Backtraces');
  await page.waitForURL(`${base}/admin/backtraces`);
  await page.setInputFiles('#backtrace-file', copyPath);
  await watchProgress('#backtrace-progress');
  await page.click('#backtrace-submit');
  await page.waitForURL(/\/admin\/backtraces\/[0-9a-f]{24}\?done=traced$/);
  expect(await page.evaluate(() => sessionStorage.getItem('progress-shown')) === '1', 'progress bar shown');
  backtracePath = new URL(page.url()).pathname;
  expect((await page.getAttribute('#backtrace-result', 'data-result')) === 'found', 'result found');
  expect((await text('#found-0 .mark-tag')) === tag, `tag ${await text('#found-0 .mark-tag')}`);
  expect((await page.getAttribute('#found-0 .mark-file a', 'href')) === `/admin/files/${markedId}`, 'file linked');
  expect((await text('#suspect')).includes('found on the internet.txt'), 'the suspect copy named');
  // The download is in the audit trail within a batch (10 ms here).
  await eventually(backtracePath, '#found-0 tr[data-client="127.0.0.1"]');
  const row = '#found-0 tr[data-client="127.0.0.1"]';
  expect(Number(await page.getAttribute(row, 'data-bytes')) === copyLength, 'the bytes it got');
  expect((await text(row)).includes('200'), await text(row));
});

await check('trace the original file: no mark', async () => {
  await page.goto(`${base}/admin/backtraces`);
  await page.setInputFiles('#backtrace-file', markedPath);
  await page.click('#backtrace-submit');
  await page.waitForURL(/\/admin\/backtraces\/[0-9a-f]{24}\?done=traced$/);
  expect((await page.getAttribute('#backtrace-result', 'data-result')) === 'no_mark', 'no mark');
  expect((await text('#backtrace-result')).includes('No mark'), await text('#backtrace-result'));
  expect(!(await page.$('#found-0')), 'nothing found');
});

await check('past backtraces are listed newest first and open', async () => {
  await page.goto(`${base}/admin/backtraces`);
  const results = await page.$$eval('#backtraces tbody tr', rows => rows.map(r => r.dataset.result));
  expect(results.join(',') === 'no_mark,found', results.join(','));
  await page.selectOption('#bt-result', 'found');
  await page.click('#backtrace-filter-submit');
  await page.waitForURL(/result=found/);
  expect((await page.$$('#backtraces tbody tr')).length === 1, 'filtered');
  await page.click('#backtraces tbody tr a');
  await page.waitForURL(`${base}${backtracePath}`);
  expect((await text('#found-0 .mark-tag')) === tag, 'opened');
});

await check('every page is readable at 320 px without horizontal scrolling', async () => {
  await page.setViewportSize({ width: 320, height: 640 });
  const paths = ['/admin', '/admin/files', `/admin/files/${fileId}`, '/admin/links', '/admin/apps',
    '/admin/pipelines', '/admin/jobs', '/admin/keys', '/admin/fraud?ip=127.0.0.1', '/admin/audit',
    '/admin/backtraces', backtracePath];
  for (const path of paths) {
    await page.goto(`${base}${path}`);
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(w <= 320, `${path} is ${w}px wide`);
  }
  await makeLink(fileId, { streaming: true });
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(w <= 320, `the issued link is ${w}px wide`);
  await page.setViewportSize({ width: 1280, height: 800 });
});

await check('every input of every page has a label', async () => {
  for (const path of ['/admin', '/admin/files', `/admin/files/${fileId}`, '/admin/links', '/admin/apps',
    '/admin/pipelines', '/admin/jobs', '/admin/keys', '/admin/fraud', '/admin/audit', '/admin/backtraces',
    backtracePath]) {
    await page.goto(`${base}${path}`);
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input:not([type=hidden]),select,textarea')]
        .filter(i => !(i.labels && i.labels.length > 0)).map(i => i.name || i.id));
    expect(unlabelled.length === 0, `${path}: ${unlabelled.join(', ')}`);
  }
});

await check('log out; the old session cookie no longer works', async () => {
  await page.goto(`${base}/admin`);
  await page.click('#logout button');
  await page.waitForURL(`${base}/admin/login`);
  await page.goto(`${base}/admin`);
  expect(page.url().endsWith('/admin/login'), 'session ended');
  const replay = await context.request.get(`${base}/admin/keys`, {
    headers: { cookie: `filegate_session=${sessionCookie}` }, maxRedirects: 0,
  });
  expect(replay.status() === 303 && replay.headers().location === '/admin/login', `replayed cookie: ${replay.status()}`);
});

await browser.close();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
