// A receptionist at a phone's width, with a patient in front of them: after a search the
// results are in view and focused; a closed service never shows a next opening; and a
// known NHS number typed with another name stops at "Is this the right person?". Every
// page passes axe-core at WCAG 2.2 AA.
const { test, expect } = require('@playwright/test');
const { expectAccessible, POSTCODE, search, kith, PASSWORD, firstSignIn } = require('./helpers');

test('a receptionist on a phone: results in view, closed services say so, the right person is checked', async ({ browser, baseURL }) => {
  test.setTimeout(90_000);
  const practice = kith(['orgs', 'add', 'Phone Width Practice', '--ods', 'S99005']).trim().split(' ').pop();
  kith(['users', 'add', 'rowan.phone@example.org', '--name', 'Rowan Reception', '--role', 'receptionist', '--org', practice, '--password-stdin'], `${PASSWORD}\n`);
  const context = await browser.newContext({ baseURL, viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await firstSignIn(page, 'rowan.phone@example.org');

  // After a search, the results heading is on screen and has the focus.
  await search(page, POSTCODE, 'lonely');
  const heading = page.locator('#results-heading');
  await expect(heading).toBeFocused();
  await expect(heading).toBeInViewport();
  await expect(page.locator('li.kith-result').first()).toBeInViewport();
  await expectAccessible(page, 'results at phone width');

  // A temporarily closed service, asked for, says so and gives no next opening.
  let closed = null;
  for (let p = 1; p <= 30 && !closed; p++) {
    await page.goto(`/?where=G31+2ER&miles=25&closed=yes&page=${p}`);
    const cards = page.locator('li.kith-result', { hasText: 'Temporarily closed' });
    if (await cards.count()) {
      closed = cards.first();
    } else if (!(await page.locator('a[rel="next"]').count())) {
      break;
    }
  }
  expect(closed, 'the demo has a temporarily closed service near Glasgow').not.toBeNull();
  await expect(closed).not.toContainText('Next open');
  await closed.locator('h3 a').click();
  await expect(page.locator('main')).toContainText('Temporarily closed');
  await expect(page.locator('main')).not.toContainText('Next open');
  await expectAccessible(page, 'a closed service at phone width');

  // Signpost someone, then type their NHS number again with another name.
  await search(page, POSTCODE, 'lonely');
  const id = (await page.locator('li.kith-result').first().getAttribute('id')).replace('service-', '');
  const signpost = async (name, born) => {
    await page.goto(`/refer/${id}`);
    await page.getByLabel('NHS number').fill('999 000 0611');
    await page.getByLabel('Full name').fill(name);
    const [year, month, day] = born.split('-');
    await page.getByLabel('Day', { exact: true }).fill(day);
    await page.getByLabel('Month', { exact: true }).fill(month);
    await page.getByLabel('Year', { exact: true }).fill(year);
    await page.getByLabel('Mobile number (optional)').fill('07700 900611');
    await page.getByLabel(/^Signpost/).check();
    await page.getByRole('button', { name: 'Continue' }).click();
  };
  await signpost('Morven Synthetic', '1961-07-02');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Check your answers before saving the signpost');
  await expectAccessible(page, 'check your answers at phone width');
  await page.getByRole('button', { name: 'Save the signpost' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Signpost saved');
  await page.getByRole('link', { name: 'View the signpost' }).click();
  await expect(page.locator('.kith-timeline')).toContainText('Information given');
  await signpost('Someone Else', '1990-01-01');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Is this the right person?');
  await expect(page.locator('.kith-right-person')).toContainText('M•••••');
  await expect(page.locator('.kith-right-person')).toContainText('July 1961');
  await expect(page.locator('main')).not.toContainText('Morven');
  await expect(page.locator('main')).toContainText('The details you entered are different');
  await expectAccessible(page, 'is this the right person?');
  await page.getByRole('button', { name: 'No, check the NHS number' }).click();
  await expect(page.locator('.nhsuk-error-summary')).toContainText('belongs to someone your practice already holds');

  // The next person at the desk starts with an empty shortlist.
  await search(page, POSTCODE, 'lonely');
  await page.locator('li.kith-result').first().getByRole('button', { name: /^Add to shortlist/ }).click();
  await expect(page.locator('[data-shortlist-count]')).toHaveText('1');
  await page.getByRole('button', { name: /^Next patient/ }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Find a local service');
  await expect(page.locator('[data-shortlist-count]')).toHaveText('0');
  await expectAccessible(page, 'the search page, signed in at phone width');
  await context.close();
});
