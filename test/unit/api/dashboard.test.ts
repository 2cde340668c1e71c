/**
 * The dashboard in headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core) against the API over a FakeControl on loopback: token
 * login, the tables show the fake's data, move / maintenance go through
 * the confirmation dialog and reach the control, live events appear.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiServer, type ApiServer } from '../../../src/api';
import { harness, TEST_PORTS, type Harness } from './harness';

const CHROMIUM = '/usr/bin/chromium';

let h: Harness;
let server: ApiServer;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe.skipIf(!existsSync(CHROMIUM))('dashboard in headless Chromium', () => {
  beforeAll(async () => {
    h = await harness();
    server = await startApiServer({ app: h.app, listen: `127.0.0.1:${TEST_PORTS.dashboard}` });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    page = await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      // The login probe (GET /api/v1/pair) answering 401 to a wrong or rotated token is expected; nothing else is.
      const expected = /401 \(Unauthorized\)/.test(msg.text()) && msg.location().url.endsWith('/api/v1/pair');
      if (msg.type() === 'error' && !expected) pageErrors.push(`${msg.text()} (${msg.location().url})`);
    });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await h?.close();
  });

  it('asks for the token and refuses a wrong one', async () => {
    await page.goto(`${server.url}/dashboard/`);
    await page.locator('#login-form').waitFor();
    expect(await page.locator('#dashboard').isHidden()).toBe(true);
    await page.fill('#token', 'not-the-token');
    await page.click('#login-form button[type=submit]');
    await expect.poll(() => page.textContent('#login-error')).toBe('That token was refused.');
  });

  it('logs in and shows the pair, nodes, groups with alias IPs and owners, volumes with mirror state and resync progress, initiators', async () => {
    await page.fill('#token', h.tokens.current());
    await page.click('#login-form button[type=submit]');
    await page.locator('body[data-loaded="true"]').waitFor();

    expect(await page.textContent('#pair')).toContain('paired');
    expect(await page.textContent('#pair-summary')).toBe('node-a + node-b · paired');
    expect(await page.locator('#nodes tbody tr').count()).toBe(2);
    expect(await page.textContent('#nodes tr[data-node="node-a"]')).toContain('(this node)');

    const rgA = page.locator('#resource-groups tr[data-rg="rg-a"]');
    expect(await rgA.locator('td').allTextContents()).toEqual(['rg-a', 'node-a', 'node-a', '198.18.0.50/24 on eth1', 'vol1', 'serving', 'auto', 'MoveFailback']);

    const vol2 = page.locator('#volumes tr[data-volume="vol2"]');
    expect(await vol2.locator('td').nth(4).textContent()).toBe('resyncing');
    expect(await vol2.locator('progress').getAttribute('value')).toBe('0.25');
    expect(await vol2.locator('td').nth(5).textContent()).toBe(' 25%');
    expect(await page.locator('#volumes tr[data-volume="vol1"] td').nth(1).textContent()).toBe('1.0 GiB thin');
    expect(await vol2.locator('td').nth(1).textContent()).toBe('2.0 GiB');

    expect(await page.textContent('#sessions tbody')).toContain('iqn.1998-01.com.vmware:esx-01');
    expect(await page.evaluate('sessionStorage.getItem("twinsan.token")')).toBe(h.tokens.current());
  });

  it('move asks for confirmation, reaches the control, and the new owner and the event show', async () => {
    await page.click('#resource-groups button[data-action="move"][data-rg="rg-a"]');
    await page.locator('#confirm[open]').waitFor();
    expect(await page.textContent('#confirm-text')).toContain('rg-a');
    await page.click('#confirm-yes');
    await until(() => h.control.callsTo('moveResourceGroup').length === 1);
    expect(h.control.callsTo('moveResourceGroup')[0]?.args).toEqual(['rg-a']);
    await expect.poll(() => page.textContent('#resource-groups tr[data-rg="rg-a"] td.owner')).toBe('node-b');
    expect(await page.textContent('#status')).toBe('Moving rg-a: done');
    await expect.poll(() => page.textContent('#events')).toContain('rg-a moved to node-b');
  });

  it('maintenance: cancel does nothing, confirm enters it and the button turns to End maintenance', async () => {
    await page.click('#nodes button[data-action="maintenance-enter"][data-node="node-b"]');
    await page.locator('#confirm[open]').waitFor();
    await page.click('#confirm-no');
    await page.locator('#confirm:not([open])').waitFor({ state: 'attached' });
    expect(h.control.callsTo('enterMaintenance')).toEqual([]);

    await page.click('#nodes button[data-action="maintenance-enter"][data-node="node-b"]');
    await page.click('#confirm-yes');
    await until(() => h.control.callsTo('enterMaintenance').length === 1);
    expect(h.control.callsTo('enterMaintenance')[0]?.args).toEqual(['node-b']);
    await page.locator('#nodes button[data-action="maintenance-exit"][data-node="node-b"]').waitFor();
    expect(await page.textContent('#status')).toBe('Evacuating node-b: job job-1 started (see Jobs)');
    // The evacuation job shows with its progress.
    const job = page.locator('#jobs tr[data-job="job-1"] td');
    expect(await job.allTextContents()).toEqual(['job-1', 'evacuate', 'node-b', 'running', ' 0%', expect.any(String), '']);
  });

  it('a live event from the node appears without reloading', async () => {
    h.control.emit('split-brain', 'vol2 diverged; pick a survivor', 'vol2');
    await expect.poll(() => page.textContent('#events li:first-child')).toContain('vol2 diverged; pick a survivor');
  });

  it('a rotated token sends the page back to the login', async () => {
    await h.tokens.rotate();
    await page.reload();
    await page.locator('#login-form').waitFor();
    expect(await page.textContent('#login-error')).toBe('That token was refused.');
    expect(await page.evaluate('sessionStorage.getItem("twinsan.token")')).toBeNull();
  });

  it('ran without script errors or CSP violations', () => {
    expect(pageErrors).toEqual([]);
  });
});
