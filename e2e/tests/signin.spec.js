// Signing in as a real person would: password, setting up two-step sign-in with a code
// computed here as an authenticator app would (RFC 6238), recovery codes, the account
// page, the audit log, and signing out. Every page passes axe-core at WCAG 2.2 AA.
const { test, expect } = require('@playwright/test');
const { expectAccessible, POSTCODE, search, kith, PASSWORD, totp, waitForEmail } = require('./helpers');

test('an area administrator signs in with two steps, reads the audit log and signs out', async ({ page, context }) => {
  const area = kith(['orgs', 'add-area', 'East End PCN']).trim().split(' ').pop();
  kith(['users', 'add', 'ada@example.org', '--name', 'Ada Lovelace', '--role', 'area-admin', '--area', area, '--password-stdin'], `${PASSWORD}\n`);

  await page.goto('/');
  await page.getByRole('link', { name: 'Staff and group sign in' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Sign in to Kith');
  await expectAccessible(page, 'the sign-in page');

  // A wrong password: the error summary takes focus and names the problem.
  await page.getByLabel('Email address').fill('ada@example.org');
  await page.getByLabel('Password').fill('not the password at all');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('.nhsuk-error-summary')).toBeFocused();
  await expect(page.locator('.nhsuk-error-summary')).toContainText('Enter a correct email address and password');
  await expectAccessible(page, 'the sign-in page with an error');

  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Set up two-step sign-in');
  await expectAccessible(page, 'setting up two-step sign-in');
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === '__Host-kith_session');
  expect(session, 'the browser keeps the session cookie').toBeTruthy();
  expect(session.httpOnly && session.secure && session.sameSite === 'Lax').toBe(true);

  const secret = await page.locator('#secret').innerText();
  await page.getByLabel('Code from the app').fill(totp(secret));
  await page.getByRole('button', { name: 'Turn on two-step sign-in' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Two-step sign-in is on');
  await expect(page.locator('#recovery-codes li')).toHaveCount(10);
  await expectAccessible(page, 'the recovery codes');
  const after = (await context.cookies()).find((c) => c.name === '__Host-kith_session');
  expect(after.value, 'a new session id after sign-in').not.toEqual(session.value);

  await page.getByRole('link', { name: 'Continue' }).click();
  // Signed in, the home page has the day's work, and the header leads to it.
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Hello, Ada Lovelace');
  await expect(page.getByRole('navigation', { name: 'Shortlist and account' }).getByRole('link', { name: 'Audit log' })).toBeVisible();
  await expectAccessible(page, 'the home page');
  await page.goto('/account');
  await expect(page.getByRole('link', { name: /Ada Lovelace/ })).toBeVisible();
  await expect(page.locator('main')).toContainText('Area administrator at East End PCN');
  await expectAccessible(page, 'the account page');

  await page.locator('main').getByRole('link', { name: 'Audit log' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Audit log');
  await expect(page.locator('table')).toContainText('sign_in_failed');
  await expect(page.locator('table')).toContainText('two_factor.enrol');
  await expectAccessible(page, 'the audit log');

  await page.goto('/account');
  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page.locator('.nhsuk-inset-text')).toContainText('You have signed out.');
  await page.goto('/admin/audit');
  await expect(page).toHaveURL(/\/signin\?next=%2Fadmin%2Faudit/);
});

test('a used magic link says so clearly', async ({ page }) => {
  const out = kith(['orgs', 'add', 'Walking group trust']);
  const org = out.trim().split(' ').pop();
  kith(['users', 'add', 'shed@example.org', '--name', 'Sam Shed', '--role', 'vcs-member', '--org', org]);
  // Any service will do: the link is for its listing.
  await page.goto('/oruk/services?per_page=1');
  const service = JSON.parse(await page.locator('body').innerText()).contents[0].id;
  const link = kith(['users', 'link', 'shed@example.org', '--service', service, '--base-url', '']).trim();

  await page.goto(link);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Continue to Kith');
  await expectAccessible(page, 'the magic link landing page');
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toContainText('still right?');
  await expectAccessible(page, 'checking a listing');
  await page.getByRole('button', { name: 'Yes, it is still right' }).click();
  await expect(page.getByRole('status')).toContainText('marked as checked today');

  await page.goto(link);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('This link no longer works');
  await expect(page.locator('main')).toContainText('already been used');
  await expectAccessible(page, 'a used magic link');
});

/** The newest email the server wrote to its outbox folder that contains `text`. */
test('a group member asks for a link on the service page and gets it by email', async ({ page }) => {
  await page.goto('/oruk/services?per_page=1&page=3');
  const service = JSON.parse(await page.locator('body').innerText()).contents[0];
  const org = kith(['orgs', 'add', 'Lunch club trust', '--directory-id', service.organization_id]).trim().split(' ').pop();
  kith(['users', 'add', 'lunch@example.org', '--name', 'Lou Lunch', '--role', 'vcs-member', '--org', org]);

  await page.goto(`/services/${service.id}`);
  await page.getByRole('link', { name: /Do you run this\?/ }).click();
  await expectAccessible(page, 'asking for a link');
  await page.getByLabel('Email address').fill('lunch@example.org');
  await page.getByRole('button', { name: 'Email me a link' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Check your email');
  await expectAccessible(page, 'the link is on its way');

  const email = await waitForEmail(`Check the listing for ${service.name}`);
  const link = /http:\/\/127\.0\.0\.1:\d+\/link\/[A-Za-z0-9_-]+/.exec(email)[0];
  await page.goto(link);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page.getByRole('heading', { level: 1 })).toContainText(`Is the listing for ${service.name} still right?`);
});

test('the shortlist goes to the person by email, through the outbox', async ({ page }) => {
  await search(page, POSTCODE, 'lonely');
  const first = page.locator('li.kith-result').first();
  const name = (await first.locator('h2, h3').first().innerText()).trim();
  await first.getByRole('button', { name: /^Add to shortlist/ }).click();
  await expect(page.locator('[data-shortlist-count]')).toHaveText('1');
  await page.goto('/shortlist');
  await page.getByRole('link', { name: 'Send by email or text' }).click();
  await expectAccessible(page, 'sending the shortlist');

  // Without signing in, a list goes by email only: texts are for staff.
  await expect(page.getByLabel('Text message to a mobile')).toHaveCount(0);
  await page.getByLabel('Email address').fill('pat.patient@');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.locator('.nhsuk-error-summary')).toContainText('Enter an email address in the correct format');
  await expectAccessible(page, 'sending the shortlist, with an error');

  await page.getByLabel('Email', { exact: true }).check();
  await page.getByLabel('Email address').fill('pat.patient@example.org');
  await page.getByRole('button', { name: 'Send' }).click();
  await expect(page.getByRole('status')).toContainText('will go to p***@example.org');
  const email = await waitForEmail('To: pat.patient@example.org');
  expect(email).toContain('Subject: Services we talked about');
  expect(email).toContain(name);
});
