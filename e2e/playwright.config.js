// Kith's browser tests. scripts/e2e builds Kith, installs Debian's chromium if missing,
// and runs these against a real `kith demo` server that Playwright starts and stops.
const { defineConfig } = require('@playwright/test');
const path = require('node:path');

const port = process.env.KITH_E2E_PORT || '8787';
const bin = process.env.KITH_BIN || path.join(__dirname, '..', 'target', 'debug', 'kith');
const dataDir = path.join(__dirname, 'test-results', 'kith-data');
// The server's clock runs this many seconds ahead; the caseload test lets four weeks pass.
const clockFile = path.join(__dirname, 'test-results', 'clock-offset');

module.exports = defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  retries: 0,
  workers: 2,
  reporter: [['list']],
  outputDir: path.join(__dirname, 'test-results', 'artifacts'),
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    browserName: 'chromium',
    launchOptions: { executablePath: process.env.CHROMIUM || '/usr/bin/chromium' },
    trace: 'retain-on-failure',
  },
  // The caseload test moves the server's clock on four weeks, so it runs after the rest.
  projects: [
    { name: 'pages', testIgnore: /caseload\.spec\.js/ },
    { name: 'caseload', testMatch: /caseload\.spec\.js/, dependencies: ['pages'] },
  ],
  webServer: {
    command: `rm -rf '${dataDir}' '${clockFile}' && '${bin}' --data-dir '${dataDir}' --test-clock-file '${clockFile}' demo --caseload 0 --listen 127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}/readyz`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: 'ignore',
    stderr: 'pipe',
  },
});
