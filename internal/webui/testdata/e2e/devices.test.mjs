// Browser tests of the mappings devices made for themselves (NAT-PMP,
// PCP), as the Services screen shows them. internal/webui's
// TestBrowserDevices runs them against a daemon with fake backends that
// shares wan0 with lan0 and holds two mappings the laptop 192.168.137.42
// made: UDP 41641 by NAT-PMP for 30 minutes, and TCP 6881 by PCP for two
// hours, only from 198.51.100.7 port 3478.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { env, base, eventually, mappings, shot, launch } from './lib.mjs';

let browser;
let page;
let pageErrors;

before(async () => {
  ({ browser, page, pageErrors } = await launch());
  await page.goto(env.NETSHARE_LOGIN_URL);
  await page.getByRole('heading', { name: 'Network connections' }).waitFor();
});

after(async () => {
  await browser?.close();
});

// row is the Services table's row of the mapping made on external port.
const row = (externalPort) => page.locator('tr', { has: page.getByRole('cell', { name: String(externalPort), exact: true }) }).first();

test('a device\'s mappings are marked with the device, the protocol, the time left and the peers allowed', async () => {
  await page.goto(base + '#/services/wan0');
  await page.getByRole('heading', { name: 'Services of wan0' }).waitFor();
  const pmp = row(41641);
  await pmp.getByText(/made by device 192\.168\.137\.42 \(NAT-PMP\), (29|30) min \d+ s left$/).waitFor();
  await pmp.getByRole('cell', { name: 'UDP', exact: true }).waitFor();
  const pcp = row(6881);
  await pcp.getByText(/made by device 192\.168\.137\.42 \(PCP\), (1 h 59|2 h 0) min left, only from 198\.51\.100\.7\/32 port 3478$/).waitFor();
  await pcp.getByRole('cell', { name: 'TCP', exact: true }).waitFor();
  await shot(page, 'services-devices');

  // A device's mapping is the device's: the administrator may delete it,
  // not switch it off or change it.
  for (const r of [pmp, pcp]) {
    assert.equal(await r.getByRole('checkbox').isDisabled(), true);
    assert.equal(await r.getByRole('button', { name: /^Edit / }).count(), 0);
    assert.equal(await r.getByRole('button', { name: /^Delete / }).count(), 1);
  }
  const listed = mappings();
  assert.deepEqual(listed.map((m) => [m.origin, m.client, m.protocol, m.externalPort]).sort(),
    [['natpmp', '192.168.137.42', 'udp', 41641], ['pcp', '192.168.137.42', 'tcp', 6881]]);
});

test('the administrator deletes a device\'s mapping; the CLI sees it gone, the other stays', async () => {
  await row(41641).getByRole('button', { name: /^Delete / }).click();
  const dlg = page.getByRole('dialog', { name: 'Delete the service?' });
  await dlg.getByText('Delete the mapping device 192.168.137.42 made (UDP 41641)?').waitFor();
  await dlg.getByRole('button', { name: 'Delete' }).click();
  await row(41641).waitFor({ state: 'detached' });
  await eventually(() => assert.deepEqual(mappings().map((m) => m.externalPort), [6881]));
  await row(6881).getByText('only from 198.51.100.7/32 port 3478').waitFor();
});

test('no script error happened in any page', () => {
  assert.deepEqual(pageErrors, []);
});
