// Every page type, including error states: what it says, and zero axe-core violations
// at WCAG 2.2 AA.
const { test, expect } = require('@playwright/test');
const { expectAccessible, POSTCODE, search, screenshotPath } = require('./helpers');

test('the search page, empty and with results', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Find a local service');
  await expectAccessible(page, 'the search page');

  await search(page, POSTCODE, 'lonely');
  await expect(page.locator('li.kith-result').first()).toBeVisible();
  await expect(page.locator('.kith-facts').first()).toContainText('Last verified');
  await expectAccessible(page, 'search results');
  // For the README: the form too, with the needs open to show their counts.
  await page.locator('summary', { hasText: 'Needs' }).click();
  await page.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
  await page.setViewportSize({ width: 1100, height: 1300 });
  await page.screenshot({ path: screenshotPath('search.png') });
});

test('filters narrow the results and show counts', async ({ page }) => {
  await search(page, POSTCODE, 'lonely');
  const heading = page.getByRole('heading', { level: 2 });
  const before = Number((await heading.innerText()).split(' ')[0]);
  await page.locator('summary', { hasText: 'Filters' }).click();
  await page.getByLabel(/^Free of charge/).check();
  await page.getByRole('button', { name: 'Apply filters' }).click();
  const after = Number((await heading.innerText()).split(' ')[0]);
  expect(after).toBeGreaterThan(0);
  expect(after).toBeLessThanOrEqual(before);
  await expect(page.getByLabel(/^Free of charge/)).toBeChecked();
  await expectAccessible(page, 'filtered results');
});

test('a need chip searches by need alone', async ({ page }) => {
  await page.goto('/');
  await page.getByLabel('Postcode or place').fill('Kirkcaldy');
  await page.getByLabel(/^Money and debt/).check();
  await page.getByRole('button', { name: 'Search', exact: true }).click();
  await expect(page.getByRole('heading', { level: 2 })).toContainText('in Money and debt near Kirkcaldy');
  await expect(page.locator('li.kith-result').first()).toBeVisible();
});

test('a mistyped postcode gets a clear error and the nearest match', async ({ page }) => {
  await search(page, 'G31 2EX', 'lonely');
  const summary = page.getByRole('alert');
  await expect(summary).toContainText('There is a problem');
  await expect(summary).toContainText('We could not find the postcode G31 2EX');
  await expect(summary).toBeFocused();
  await expectAccessible(page, 'the search page with a postcode error');
  await page.getByRole('link', { name: POSTCODE }).click();
  await expect(page.getByRole('heading', { level: 2 })).toContainText(`near ${POSTCODE}`);
});

test('something that is not a postcode or a place', async ({ page }) => {
  await search(page, 'Narnia', 'lonely');
  await expect(page.getByRole('alert')).toContainText('We could not find a place called “Narnia”');
  await expectAccessible(page, 'an unknown place');
});

test('no results suggests a wider search', async ({ page }) => {
  // Neither words nor meaning: "xylophone quartet" would find music groups by meaning.
  await search(page, POSTCODE, 'zxqv wpfk');
  await expect(page.getByRole('heading', { level: 2 })).toContainText('0 services');
  await expect(page.getByText('No services match this search.')).toBeVisible();
  await expectAccessible(page, 'empty results');
  await page.getByRole('link', { name: /Search within 5 miles instead/ }).click();
  await expect(page).toHaveURL(/miles=5/);
});

test('a very long query is refused with a message, not a failure', async ({ page }) => {
  const long = 'lonely '.repeat(700);
  const response = await page.goto(`/?where=${encodeURIComponent(POSTCODE)}&q=${encodeURIComponent(long)}`);
  expect(response.status()).toBe(400);
  await expect(page.getByRole('alert')).toContainText('200 characters or fewer');
  await expect(page.locator('#q')).toHaveValue(long.trim());
  await expectAccessible(page, 'a too-long query');
});

test('a bad filter value is explained', async ({ page }) => {
  const response = await page.goto(`/?where=${encodeURIComponent(POSTCODE)}&age=old`);
  expect(response.status()).toBe(400);
  await expect(page.getByRole('alert')).toContainText('Enter age as a whole number');
  await expectAccessible(page, 'an age error');
});

test('a service page has what a person needs to go', async ({ page }) => {
  await search(page, POSTCODE, 'walking group');
  await page.locator('li.kith-result h3 a').first().click();
  await expect(page.getByRole('heading', { level: 2, name: 'Where' })).toBeVisible();
  await expect(page.getByRole('link', { name: /Directions to .* on OpenStreetMap/ }).first()).toHaveAttribute(
    'href',
    /^https:\/\/www\.openstreetmap\.org\/directions/,
  );
  await expect(page.getByText(/(Mondays|Tuesdays|Wednesdays|Thursdays|Fridays|Saturdays|Sundays|of the month)/).first()).toBeVisible();
  await expect(page.getByRole('link', { name: 'Report a problem with this listing' })).toBeVisible();
  await expectAccessible(page, 'a service page');
});

test('the shortlist, empty and full, and the print view', async ({ page }) => {
  await page.goto('/shortlist');
  await expect(page.getByText('The shortlist is empty.')).toBeVisible();
  await expectAccessible(page, 'the empty shortlist');

  await search(page, POSTCODE, 'lonely');
  for (const i of [0, 1, 2, 3]) {
    await page.locator('li.kith-result').nth(i).getByRole('button', { name: /^Add to shortlist/ }).click();
  }
  await expect(page.locator('[data-shortlist-count]')).toHaveText('4');
  await page.goto('/shortlist');
  await expectAccessible(page, 'the shortlist');
  await page.goto('/shortlist/print');
  await expect(page.locator('section.kith-print__service')).toHaveCount(4);
  await expectAccessible(page, 'the print view');
  await expect(page.locator('.kith-print__date')).not.toBeEmpty();
  const leaflet = await page.request.get('/shortlist/leaflet.pdf');
  expect(leaflet.status()).toBe(200);
  expect(leaflet.headers()['content-type']).toBe('application/pdf');
});

test('reporting a problem with a listing, with a missing choice first', async ({ page }) => {
  await search(page, POSTCODE, 'lonely');
  await page.locator('li.kith-result h3 a').first().click();
  const name = (await page.getByRole('heading', { level: 1 }).innerText()).trim();
  await page.getByRole('link', { name: 'Report a problem with this listing' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(`Report a problem with ${name}`);
  await expectAccessible(page, 'the report form');
  await page.getByRole('button', { name: 'Send report' }).click();
  await expect(page.getByRole('alert')).toContainText('Select what is wrong with the listing');
  await expectAccessible(page, 'the report form with an error');
  await page.getByLabel('The days or times are wrong').check();
  await page.getByLabel(/^Tell us more/).fill('It meets on Thursdays now.');
  await page.getByRole('button', { name: 'Send report' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Thank you');
  await expectAccessible(page, 'the report confirmation');
});

test('pages that do not exist', async ({ page }) => {
  let response = await page.goto('/nowhere');
  expect(response.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Page not found');
  await expectAccessible(page, 'the 404 page');
  response = await page.goto('/services/not-a-service');
  expect(response.status()).toBe(404);
  await expectAccessible(page, 'a missing service');
});

test('the embeddable widget, framed and by script', async ({ page, baseURL }) => {
  await page.goto('/widget');
  await expectAccessible(page, 'the widget');
  // A community website on another origin (localhost rather than 127.0.0.1) embeds it
  // with the script.
  const community = baseURL.replace('127.0.0.1', 'localhost') + '/community-page-test';
  await page.route(community, (route) =>
    route.fulfill({
      contentType: 'text/html',
      body: `<!DOCTYPE html><html lang="en"><head><title>Community</title></head><body><main><h1>Our group</h1><script src="${baseURL}/widget.js" async></script></main></body></html>`,
    }),
  );
  // Both are loopback here; on the web both are public, so Chromium's local-network
  // permission prompt would not arise.
  await page.context().grantPermissions(['local-network-access']);
  await page.goto(community);
  const frame = page.frameLocator('iframe[title="Find a local service"]');
  await expect(frame.getByRole('heading', { name: 'Find a local service or group' })).toBeVisible();
  await frame.getByLabel('Postcode or place').fill(POSTCODE);
  await frame.getByLabel('What are you looking for?').fill('lonely');
  const [results] = await Promise.all([
    page.context().waitForEvent('page'),
    frame.getByRole('button', { name: /Search/ }).click(),
  ]);
  await expect(results.getByRole('heading', { level: 2 })).toContainText('near G31 2ER');
});

test('every response carries the security headers and a strict CSP', async ({ request }) => {
  for (const path of ['/', '/?where=G31+2ER&q=lonely', '/shortlist', '/nowhere', '/oruk/', '/healthz']) {
    const response = await request.get(path);
    const headers = response.headers();
    expect(headers['content-security-policy'], path).toContain("default-src 'self'");
    expect(headers['content-security-policy'], path).not.toContain('unsafe-inline');
    expect(headers['x-content-type-options'], path).toBe('nosniff');
    expect(headers['x-frame-options'], path).toBe('DENY');
  }
  const widget = await request.get('/widget');
  expect(widget.headers()['content-security-policy']).toContain('frame-ancestors *');
});

test('the first load of the search page weighs at most 120 KB compressed', async ({ browser }, testInfo) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const responses = [];
  page.on('requestfinished', async (request) => responses.push(request));
  await page.goto('/', { waitUntil: 'networkidle' });
  let total = 0;
  const rows = [];
  for (const request of responses) {
    const sizes = await request.sizes();
    const bytes = sizes.responseBodySize + sizes.responseHeadersSize;
    total += bytes;
    rows.push(`${request.url().replace(testInfo.project.use.baseURL, '')}\t${bytes}`);
  }
  console.log(`Search page first load: ${(total / 1024).toFixed(1)} KB over ${responses.length} requests\n${rows.join('\n')}`);
  expect(total).toBeLessThanOrEqual(120 * 1024);
  await context.close();
});
