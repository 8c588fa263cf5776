// A curator reads what Kith's feed pulls found: each pull's figures and the services a
// feed has stopped listing. The feed is a real HTTP server here on 127.0.0.1 serving
// part of Bristol's real ORUK v1 feed; fewer services after the first pull.
const { test, expect } = require('@playwright/test');
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { expectAccessible, kith, kithAsync, PASSWORD } = require('./helpers');

const BRISTOL = path.join(__dirname, '..', '..', '..', 'shared', 'data', 'oruk-v1', 'bristol-services.json');

test('a curator sees each feed pull and the services withdrawn from it', async ({ page }) => {
  if (!fs.existsSync(BRISTOL)) {
    test.skip(!process.env.KITH_REQUIRE_SHARED, `skipped: ${BRISTOL} is missing`);
  }
  const all = JSON.parse(fs.readFileSync(BRISTOL, 'utf8')).filter((s) => (s.name || '').trim()).slice(0, 20);
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests += 1;
    const served = requests === 1 ? all : all.slice(5);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(served));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/api`;
  try {
    kith(['feeds', 'add', url, '--name', 'bristol-sample', '--area', 'E06000023']);
    for (let i = 0; i < 3; i += 1) await kithAsync(['feeds', 'pull', 'bristol-sample', '--full']);
  } finally {
    server.close();
  }

  const area = kith(['orgs', 'add-area', 'Bristol curation']).trim().split(' ').pop();
  kith(['users', 'add', 'cora@example.org', '--name', 'Cora Curator', '--role', 'curator', '--area', area, '--password-stdin'], `${PASSWORD}\n`);
  // A curator handles no personal data, so a password alone signs them in.
  await page.goto('/signin');
  await page.getByLabel('Email address').fill('cora@example.org');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Hello, Cora Curator');
  await page.getByRole('link', { name: 'Feeds' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Feeds');
  await expect(page.getByRole('heading', { level: 2, name: 'bristol-sample' })).toBeVisible();
  const pulls = page.getByRole('table', { name: /Latest pulls of bristol-sample/ }).locator('tbody tr');
  await expect(pulls).toHaveCount(3);
  await expect(pulls.first()).toContainText('15 services: 0 new, 0 changed, 15 unchanged, 5 withdrawn');
  await expect(pulls.last()).toContainText('20 services: 20 new');
  const withdrawn = page.locator('table', { has: page.locator('th', { hasText: 'No longer listed by' }) }).locator('tbody tr');
  await expect(withdrawn).toHaveCount(5);
  await expect(withdrawn.first()).toContainText('the feed bristol-sample');
  await expectAccessible(page, 'the curators’ feeds page');
});
