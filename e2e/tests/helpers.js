const { expect } = require('@playwright/test');
const AxeBuilder = require('@axe-core/playwright').default;
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/** WCAG 2.2 AA, and everything below it. */
const WCAG_22_AA = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'];

/** Fails with every axe-core violation on the page, named and located. */
async function expectAccessible(page, what) {
  const results = await new AxeBuilder({ page }).withTags(WCAG_22_AA).analyze();
  const found = results.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`,
  );
  expect(found, `axe-core violations on ${what}`).toEqual([]);
  expect(results.passes.length, `axe-core ran its checks on ${what}`).toBeGreaterThan(10);
}

/** The postcode the demo always has, in Parkhead, Glasgow. */
const POSTCODE = 'G31 2ER';

async function search(page, where, what) {
  await page.goto('/');
  await page.getByLabel('Postcode or place').fill(where);
  await page.getByLabel('What does the person need?').fill(what);
  await page.getByRole('button', { name: 'Search', exact: true }).click();
}

/** The text of a PDF, by pdftotext from Debian's poppler-utils. */
function pdfText(file) {
  return execFileSync('pdftotext', ['-layout', file, '-'], { encoding: 'utf8' });
}

function pdfInfo(file, ...flags) {
  return execFileSync('pdfinfo', [...flags, file], { encoding: 'utf8' });
}

function pdfPages(file) {
  return Number(/Pages:\s+(\d+)/.exec(pdfInfo(file))[1]);
}

const SCREENSHOTS = path.join(__dirname, '..', '..', 'docs', 'screenshots');
function screenshotPath(name) {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  return path.join(SCREENSHOTS, name);
}

/** The leaflet's first page as a PNG for the README, by pdftoppm. */
function leafletScreenshot(pdf) {
  const out = screenshotPath('leaflet');
  execFileSync('pdftoppm', ['-png', '-r', '60', '-singlefile', pdf, out]);
}

/** The kith binary the server runs, and the data directory it serves from. */
const bin = process.env.KITH_BIN || path.join(__dirname, '..', '..', 'target', 'debug', 'kith');
const dataDir = path.join(__dirname, '..', 'test-results', 'kith-data');

/** Runs a kith command on the test server's data, as an administrator would. */
function kith(args, input) {
  return execFileSync(bin, ['--data-dir', dataDir, ...args], { encoding: 'utf8', input, env: { ...process.env, KITH_DATABASE_URL: '' } });
}

/**
 * The same, without blocking: for a command that talks to a server running in this test
 * (a stand-in feed), which must go on answering while the command waits.
 */
function kithAsync(args) {
  const { execFile } = require('node:child_process');
  return new Promise((resolve, reject) => {
    execFile(bin, ['--data-dir', dataDir, ...args], { encoding: 'utf8', env: { ...process.env, KITH_DATABASE_URL: '' } },
      (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)));
  });
}

/** A password every test account uses. */
const PASSWORD = 'violet kettle orbit lantern';

/** The current TOTP code for a base32 secret, as an authenticator app computes it (RFC 6238). */
function totp(base32, at = Date.now()) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32.replace(/\s+/g, '').toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const mac = require('node:crypto').createHmac('sha1', key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

/**
 * Signs in for the first time and sets up two-step sign-in, as a person with an
 * authenticator app would; returns the TOTP secret. `offsetSeconds` is how far the
 * server's clock runs ahead (the caseload test moves it).
 */
async function firstSignIn(page, email, offsetSeconds = 0) {
  await page.goto('/signin');
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const secret = await page.locator('#secret').innerText();
  await page.getByLabel('Code from the app').fill(totp(secret, Date.now() + offsetSeconds * 1000));
  await page.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Two-step sign-in is on');
  return secret;
}

/** The first email in the file outbox containing every one of `texts`, waiting for the sender. */
async function waitForEmail(...texts) {
  const dir = path.join(dataDir, 'outbox');
  for (let i = 0; i < 75; i += 1) {
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.eml')) : [];
    const found = files
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'))
      .find((m) => texts.every((t) => m.includes(t)));
    if (found) return found;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`no email containing ${texts.join(' and ')} in ${dir}`);
}

module.exports = {
  expectAccessible, POSTCODE, search, pdfText, pdfPages, pdfInfo, leafletScreenshot, screenshotPath,
  dataDir, kith, kithAsync, PASSWORD, totp, waitForEmail, firstSignIn,
};
