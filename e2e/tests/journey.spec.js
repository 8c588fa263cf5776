// The receptionist's job: a postcode and "lonely", a service page, three services on the
// shortlist, the printed page. With JavaScript, without it, and by keyboard alone.
const { test, expect } = require('@playwright/test');
const { POSTCODE, search, pdfText, pdfPages, pdfInfo, leafletScreenshot } = require('./helpers');

const oneLine = (s) => s.replace(/\s+/g, ' ');

async function shortlistThree(page, testInfo) {
  await search(page, POSTCODE, 'lonely');
  await expect(page.getByRole('heading', { level: 2, name: /services? for “lonely” near G31 2ER/ })).toBeVisible();
  const results = page.locator('li.kith-result');
  expect(await results.count()).toBeGreaterThanOrEqual(3);
  const names = [(await results.nth(0).locator('h3').innerText()).trim()];

  // The first from its own page.
  await results.nth(0).locator('h3 a').click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(names[0]);
  await expect(page.getByRole('heading', { level: 2, name: 'When' })).toBeVisible();
  await expect(page.getByText('Last verified:')).toBeVisible();
  await page.getByRole('button', { name: /^Add to shortlist/ }).click();
  await expect(page.getByRole('button', { name: /^Remove from shortlist/ })).toBeVisible();
  await expect(page.locator('[data-shortlist-count]')).toHaveText('1');

  // Two more from the results: the next two not yet on it, read as the page shows them
  // now (services that score alike may swap places when the directory changes between
  // two searches, as it does while the other tests run).
  await page.getByRole('link', { name: 'Back to search' }).click();
  await expect(results.first()).toBeVisible();
  for (let i = 0; names.length < 3 && i < (await results.count()); i++) {
    const name = (await results.nth(i).locator('h3').innerText()).trim();
    if (names.includes(name)) continue;
    await results.nth(i).getByRole('button', { name: /^Add to shortlist/ }).click();
    await expect(results.nth(i).getByRole('button', { name: /^Remove from shortlist/ })).toBeVisible();
    names.push(name);
  }
  await expect(page.locator('[data-shortlist-count]')).toHaveText('3');

  await page.getByRole('link', { name: /^Shortlist/ }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Your shortlist');
  for (const name of names) {
    await expect(page.getByRole('heading', { level: 3, name })).toBeVisible();
  }

  await page.getByRole('link', { name: 'Print leaflet' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Services we talked about');
  const printed = testInfo.outputPath('printed.pdf');
  await page.emulateMedia({ media: 'print' });
  await page.pdf({ path: printed, preferCSSPageSize: true });
  const text = oneLine(pdfText(printed));
  for (const name of names) {
    expect(text).toContain(oneLine(name));
  }
  expect(pdfPages(printed), 'three services print on one A4 page').toBe(1);

  // The typeset leaflet: a tagged PDF/UA-1 download.
  await page.goto('/shortlist');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Download leaflet (PDF)' }).click(),
  ]);
  const leaflet = testInfo.outputPath('leaflet.pdf');
  await download.saveAs(leaflet);
  const leafletText = oneLine(pdfText(leaflet));
  for (const name of names) {
    expect(leafletText).toContain(oneLine(name));
  }
  expect(leafletText).toContain('Services we talked about');
  const info = pdfInfo(leaflet);
  expect(info).toMatch(/Tagged:\s+yes/);
  expect(info).toMatch(/Pages:\s+1/);
  expect(pdfInfo(leaflet, '-meta'), 'declares PDF/UA-1 in its XMP metadata').toMatch(/pdfuaid:part[^0-9]*1/);
  if (testInfo.project.use.javaScriptEnabled !== false) {
    leafletScreenshot(leaflet);
  }
  return names;
}

test('postcode and "lonely" to a printed shortlist, with JavaScript', async ({ page }, testInfo) => {
  await shortlistThree(page, testInfo);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the same journey works with plain forms and links', async ({ page }, testInfo) => {
    await shortlistThree(page, testInfo);
  });
});

test('keyboard only: search, open a result, shortlist it, reach the shortlist', async ({ page }) => {
  await page.goto('/');
  await page.keyboard.press('Tab'); // skip link
  await expect(page.getByRole('link', { name: 'Skip to main content' })).toBeFocused();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await expect(page.locator('#where')).toBeFocused();
  await page.keyboard.type(POSTCODE);
  await page.keyboard.press('Tab');
  await page.keyboard.type('lonely');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 2, name: /near G31 2ER/ })).toBeVisible();

  // Tab on to the first result's link and open it.
  const first = page.locator('li.kith-result h3 a').first();
  const name = (await first.innerText()).trim();
  for (let i = 0; i < 80 && !(await first.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press('Tab');
  }
  await expect(first).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText(name);

  const add = page.getByRole('button', { name: /^Add to shortlist/ });
  for (let i = 0; i < 40 && !(await add.evaluate((el) => el === document.activeElement)); i++) {
    await page.keyboard.press('Tab');
  }
  await expect(add).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.locator('[data-shortlist-count]')).toHaveText('1');

  // From the top of the page: skip link, Kith, Shortlist.
  await page.goto(page.url());
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  await expect(page.getByRole('link', { name: /^Shortlist/ })).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { level: 3, name })).toBeVisible();
});

test('focus moves through the search form in reading order', async ({ page }) => {
  await page.goto('/');
  const seen = [];
  for (let i = 0; i < 9; i++) {
    await page.keyboard.press('Tab');
    seen.push(
      await page.evaluate(() => {
        const el = document.activeElement;
        return el.id || el.textContent.trim().replace(/\s+/g, ' ');
      }),
    );
  }
  expect(seen[0]).toBe('Skip to main content');
  expect(seen[1]).toBe('Kith local services and groups');
  expect(seen[2]).toMatch(/^Shortlist 0/);
  expect(seen.slice(3)).toEqual(['where', 'q', 'miles', 'Search', 'Needs', 'need-1']);
});
