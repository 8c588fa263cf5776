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

module.exports = { expectAccessible, POSTCODE, search, pdfText, pdfPages, pdfInfo, leafletScreenshot, screenshotPath };
