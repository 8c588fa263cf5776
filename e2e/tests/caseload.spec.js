// The closed loop, end to end, on the server's injected clock: a receptionist searches,
// shortlists and refers with consent; the group opens the referral with a one-time link
// and accepts it; four weeks pass; the link worker gets the reminder and records "still
// attending" with ONS4. The timeline shows every step, and the group sees nothing else.
// Runs after every other browser test (see playwright.config.js), because it moves the
// clock. Every page passes axe-core at WCAG 2.2 AA.
const { test, expect } = require('@playwright/test');
const fs = require('node:fs');
const path = require('node:path');
const { expectAccessible, POSTCODE, search, kith, PASSWORD, waitForEmail, firstSignIn } = require('./helpers');

const clockFile = path.join(__dirname, '..', 'test-results', 'clock-offset');
let offsetSeconds = 0;

/** Lets `days` pass on the server's clock. */
function letDaysPass(days) {
  offsetSeconds += days * 86_400;
  fs.writeFileSync(clockFile, String(offsetSeconds));
}

test('refer, accept by link, four weeks on the link worker records "still attending" with ONS4', async ({ browser, baseURL }) => {
  test.setTimeout(120_000);
  const practice = kith(['orgs', 'add', 'Carntyne Medical Practice', '--ods', 'S99004']).trim().split(' ').pop();
  kith(['users', 'add', 'rhona@example.org', '--name', 'Rhona Reception', '--role', 'receptionist', '--org', practice, '--password-stdin'], `${PASSWORD}\n`);
  kith(['users', 'add', 'lee@example.org', '--name', 'Lee Link', '--role', 'link-worker', '--org', practice, '--password-stdin'], `${PASSWORD}\n`);

  // The receptionist searches and shortlists two services.
  const reception = await (await browser.newContext({ baseURL })).newPage();
  await firstSignIn(reception, 'rhona@example.org', offsetSeconds);
  await search(reception, POSTCODE, 'lonely');
  const results = reception.locator('li.kith-result');
  const ids = [];
  for (const i of [0, 1]) {
    ids.push((await results.nth(i).getAttribute('id')).replace('service-', ''));
    await results.nth(i).getByRole('button', { name: /^Add to shortlist/ }).click();
    await expect(results.nth(i).getByRole('button', { name: /^Remove from shortlist/ })).toBeVisible();
  }
  // Each is run by a group that takes referrals through Kith, with one member.
  const services = [];
  for (const [i, id] of ids.entries()) {
    await reception.goto(`/oruk/services/${id}`);
    const service = JSON.parse(await reception.locator('body').innerText());
    const group = kith(['orgs', 'add', `Caseload group ${i + 1}`, '--directory-id', service.organization_id]).trim().split(' ').pop();
    kith(['users', 'add', `group${i + 1}@example.org`, '--name', `Group member ${i + 1}`, '--role', 'vcs-member', '--org', group]);
    services.push(service);
  }

  // From the shortlist, three screens: the shortlist, the form, the referral.
  const refer = async (service, nhs, name) => {
    await reception.goto('/shortlist');
    await expectAccessible(reception, 'the shortlist, for staff');
    await reception.getByRole('link', { name: `Refer or signpost someone to ${service.name}` }).click();
    await expect(reception.getByRole('heading', { level: 1 })).toHaveText('Refer or signpost someone');
    await reception.getByLabel('NHS number').fill(nhs);
    await reception.getByLabel('Full name').fill(name);
    await reception.getByLabel('Day', { exact: true }).fill('14');
    await reception.getByLabel('Month', { exact: true }).fill('3');
    await reception.getByLabel('Year', { exact: true }).fill('1952');
    await reception.getByLabel('Mobile number (optional)').fill('07700 900321');
    await reception.getByRole('textbox', { name: 'Reason for referral' }).fill('Isolated since retiring');
    await reception.getByLabel('What matters to them, in their words').fill('Meeting people who like walking');
    await reception.getByLabel(/They agree to share/).check();
    await reception.getByText('Well-being now (ONS4, optional)').click();
    for (const [n, answer] of ['4', '5', '3', '7'].entries()) {
      await reception.locator(`#ons4-${n + 1}`).fill(answer);
    }
    await expectAccessible(reception, 'the referral form, filled in');
    await reception.getByRole('button', { name: 'Continue' }).click();
    await expect(reception.locator('main')).toContainText('4, 5, 3, 7');
    await reception.getByRole('button', { name: 'Send the referral' }).click();
    await reception.getByRole('link', { name: 'View the referral' }).click();
    await expect(reception.getByRole('heading', { level: 1 })).toHaveText(name);
    await expect(reception.locator('.kith-timeline')).toContainText('Referral sent');
    return new URL(reception.url()).pathname;
  };
  const first = await refer(services[0], '999 000 0042', 'Morgan Synthetic');
  const second = await refer(services[1], '999 000 0050', 'Robin Synthetic');
  await expect(reception.locator('main')).toContainText('At referral');

  // The group is told (with no personal details), asks for a link, and opens the referral.
  const told = await waitForEmail('To: group1@example.org', `A new referral to ${services[0].name}`);
  expect(told).not.toContain('Morgan');
  const linkPage = /http:\/\/127\.0\.0\.1:\d+(\/referrals\/[0-9a-f-]+\/link)/.exec(told)[1];
  expect(linkPage).toBe(`${first}/link`);
  const group = await (await browser.newContext({ baseURL })).newPage();
  await group.goto(linkPage);
  await expect(group.getByRole('heading', { level: 1 })).toHaveText('Open a referral to your group');
  await expectAccessible(group, 'asking for a link to a referral');
  await group.getByLabel('Email address').fill('group1@example.org');
  await group.getByRole('button', { name: 'Email me a link' }).click();
  await expect(group.getByRole('heading', { level: 1 })).toHaveText('Check your email');
  const link = /http:\/\/127\.0\.0\.1:\d+\/link\/[A-Za-z0-9_-]+/.exec(
    await waitForEmail('To: group1@example.org', 'Open a referral to your group'),
  )[0];
  await group.goto(link);
  await group.getByRole('button', { name: 'Continue' }).click();
  await expect(group).toHaveURL(new RegExp(`${first}$`));
  await expect(group.getByRole('heading', { level: 1 })).toHaveText('Morgan Synthetic');
  await expect(group.locator('main')).toContainText('07700900321');
  // Only what the consent covers: no well-being answers, no "what matters".
  await expect(group.locator('main')).not.toContainText('At referral');
  await expect(group.locator('main')).not.toContainText('Meeting people who like walking');
  await expectAccessible(group, 'the referral, opened by link');
  await group.getByLabel('Accept').check();
  await group.getByRole('button', { name: 'Save' }).click();
  await expect(group.locator('.kith-timeline')).toContainText('Accepted');

  // The link opens that referral and nothing else: not the other group's, not the inbox.
  for (const other of [second, '/inbox', '/follow-ups', '/fhir/Task']) {
    const response = await group.goto(other);
    const refused = [401, 403].includes(response.status()) || /\/signin/.test(group.url());
    expect(refused, `the group's link does not open ${other}`).toBe(true);
  }

  // Four weeks pass. The link worker is reminded, signs in, and records the follow-up.
  letDaysPass(28);
  const reminder = await waitForEmail('To: lee@example.org', 'A follow-up is due', first);
  expect(reminder).not.toContain('Morgan');
  const worker = await (await browser.newContext({ baseURL })).newPage();
  await firstSignIn(worker, 'lee@example.org', offsetSeconds);
  await worker.goto('/follow-ups');
  await expect(worker.getByRole('heading', { level: 1 })).toHaveText('Follow-ups');
  await expect(worker.locator('table')).toContainText(services[0].name);
  await expectAccessible(worker, 'the follow-ups');
  await worker.goto(first);
  await expect(worker.getByRole('heading', { level: 2, name: 'Record the follow-up' })).toBeVisible();
  await worker.getByRole('button', { name: 'Save the follow-up' }).click();
  await expect(worker.locator('.nhsuk-error-summary')).toContainText('Choose what happened');
  await expectAccessible(worker, 'the follow-up with an error');
  await worker.getByLabel('Still attending').check();
  for (const [n, answer] of ['7', '7', '6', '4'].entries()) {
    await worker.locator(`#ons4-${n + 1}`).fill(answer);
  }
  await worker.getByRole('button', { name: 'Save the follow-up' }).click();
  const timeline = worker.locator('.kith-timeline');
  for (const step of ['Referral sent', 'Accepted', 'Follow-up: Still attending']) {
    await expect(timeline).toContainText(step);
  }
  await expect(worker.locator('main')).toContainText('At follow-up');
  await expect(worker.locator('.kith-follow-up')).toContainText('Reminder sent');
  await expectAccessible(worker, 'the referral, followed up');

  // The Links report counts it.
  await worker.goto('/reports/links');
  await expect(worker.getByRole('heading', { level: 1 })).toHaveText('Links report');
  await expect(worker.locator('[data-count="referrals"]')).toHaveText('2');
  await expect(worker.locator('[data-count="still_attending"]')).toContainText('1');
  await expectAccessible(worker, 'the Links report');
});
