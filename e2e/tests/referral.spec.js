// A receptionist refers a (synthetic) person from a service page, and the group sees the
// referral in its inbox and accepts it. Every page passes axe-core at WCAG 2.2 AA.
const { test, expect } = require('@playwright/test');
const { expectAccessible, kith, PASSWORD, firstSignIn } = require('./helpers');

test('refer from a service page, then the group accepts from its inbox', async ({ browser }) => {
  const receptionContext = await browser.newContext({ baseURL: test.info().project.use.baseURL });
  const reception = await receptionContext.newPage();
  await reception.goto('/oruk/services?per_page=1&page=5');
  const service = JSON.parse(await reception.locator('body').innerText()).contents[0];
  const practice = kith(['orgs', 'add', 'Parkhead Health Centre', '--ods', 'S99001']).trim().split(' ').pop();
  const group = kith(['orgs', 'add', 'The group', '--directory-id', service.organization_id]).trim().split(' ').pop();
  kith(['users', 'add', 'rita@example.org', '--name', 'Rita Reception', '--role', 'receptionist', '--org', practice, '--password-stdin'], `${PASSWORD}\n`);
  kith(['users', 'add', 'gus@example.org', '--name', 'Gus Group', '--role', 'vcs-member', '--org', group, '--password-stdin'], `${PASSWORD}\n`);

  await firstSignIn(reception, 'rita@example.org');
  await reception.goto(`/services/${service.id}`);
  await reception.getByRole('link', { name: 'Refer or signpost someone' }).click();
  await expect(reception.getByRole('heading', { level: 1 })).toHaveText('Refer or signpost someone');
  await expectAccessible(reception, 'the referral form');
  await reception.getByLabel('NHS number').fill('999 000 0034');
  await reception.getByLabel('Full name').fill('Alex Synthetic');
  await reception.getByLabel('Day', { exact: true }).fill('3');
  await reception.getByLabel('Month', { exact: true }).fill('7');
  await reception.getByLabel('Year', { exact: true }).fill('1948');
  await reception.getByLabel('Mobile number (optional)').fill('07700 900789');
  await reception.getByRole('textbox', { name: 'Reason for referral' }).fill('Lonely since a bereavement');
  await reception.getByLabel('What matters to them, in their words').fill('Having someone to talk to');
  await reception.getByRole('button', { name: 'Continue' }).click();
  await expect(reception.locator('.nhsuk-error-summary')).toContainText('consent');
  await expectAccessible(reception, 'the referral form with an error');
  await reception.getByLabel(/They agree to share/).check();
  await reception.getByRole('button', { name: 'Continue' }).click();
  // Every answer read back, each with its own "Change", before anything is sent.
  await expect(reception.getByRole('heading', { level: 1 })).toHaveText('Check your answers before sending the referral');
  await expect(reception.locator('main')).toContainText('3 July 1948');
  await expectAccessible(reception, 'check your answers');
  await reception.getByRole('button', { name: 'Change what matters to them' }).click();
  await expect(reception.getByLabel('What matters to them, in their words')).toHaveValue('Having someone to talk to');
  await reception.getByLabel('What matters to them, in their words').fill('Having someone to talk to, and a walk');
  await reception.getByRole('button', { name: 'Continue' }).click();
  await expect(reception.locator('main')).toContainText('and a walk');
  await reception.getByRole('button', { name: 'Send the referral' }).click();
  await expect(reception.getByRole('heading', { level: 1 })).toHaveText('Referral sent');
  await expect(reception.locator('main')).toContainText('What happens next');
  await expectAccessible(reception, 'the confirmation');
  await reception.getByRole('link', { name: 'View the referral' }).click();
  await expect(reception.getByRole('heading', { level: 1 })).toHaveText('Alex Synthetic');
  await expect(reception.locator('.kith-timeline')).toContainText('Referral sent');
  await expectAccessible(reception, 'the referral, as the referrer sees it');

  const groupContext = await browser.newContext({ baseURL: test.info().project.use.baseURL });
  const groupPage = await groupContext.newPage();
  await firstSignIn(groupPage, 'gus@example.org');
  await groupPage.goto('/inbox');
  await expect(groupPage.getByRole('heading', { level: 1 })).toHaveText('Referrals to your group');
  await expectAccessible(groupPage, 'the inbox');
  await groupPage.getByRole('link', { name: /^Open/ }).first().click();
  await expect(groupPage.locator('main')).toContainText('07700900789');
  await groupPage.getByLabel('Accept').check();
  await groupPage.getByRole('button', { name: 'Save' }).click();
  await expect(groupPage.locator('.kith-timeline')).toContainText('Accepted');
  await expectAccessible(groupPage, 'the referral, as the group sees it');

  await reception.reload();
  await expect(reception.locator('.kith-timeline')).toContainText('Accepted');
  await receptionContext.close();
  await groupContext.close();
});
