// Opens the kaocap viewer in headless Chromium (playwright-core from web/node_modules, the
// system's Chromium) and records what the page applies: for every `kaocap:frame` event, the
// frame index, the head mesh's jawOpen morph weight and the head's rotation. Once jawOpen passes
// `shotAbove` it freezes the display and takes a screenshot; stops at frame `untilFrame`; prints
// one JSON object.
//
//   node drive_page.mjs '{"url": ..., "webDir": ..., "chromium": ..., "userDataDir": ...,
//                        "screenshot": ..., "untilFrame": 70, "shotAbove": 0.5, "timeoutMs": 60000}'
import { createRequire } from 'node:module';
import path from 'node:path';

const options = JSON.parse(process.argv[2]);
const require = createRequire(path.join(options.webDir, 'package.json'));
const { chromium } = require('playwright-core');

// Root in a container: no sandbox. SwiftShader gives WebGL without a GPU.
const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
];

function record() {
  window.__samples = [];
  window.addEventListener('kaocap:frame', (event) => {
    const viewer = window.kaocapViewer;
    window.__samples.push({ frame: event.detail.frame, jawOpen: viewer.jawOpen, quaternionWxyz: viewer.headQuaternionWxyz });
  });
}

const context = await chromium.launchPersistentContext(options.userDataDir, {
  executablePath: options.chromium, headless: true, args: FLAGS, viewport: { width: 1280, height: 560 },
  timeout: options.timeoutMs,
});
const log = [];
let result;
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => log.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));
  page.setDefaultTimeout(options.timeoutMs);
  await page.addInitScript(record);
  await page.goto(options.url);
  await page.waitForFunction(() => window.kaocapViewer?.connected && window.kaocapViewer.ready);
  // Freeze the display (in the same task that sees the open mouth) for the screenshot.
  await page.waitForFunction((above) => {
    const viewer = window.kaocapViewer;
    if (!(viewer.jawOpen > above && viewer.images > 0)) return false;
    viewer.freeze(true);
    return true;
  }, options.shotAbove);
  await page.screenshot({ path: options.screenshot });
  await page.evaluate(() => window.kaocapViewer.freeze(false));
  await page.waitForFunction((until) => window.kaocapViewer.frame >= until, options.untilFrame);
  result = await page.evaluate(() => ({
    samples: window.__samples, webgl: window.kaocapViewer.webgl, images: window.kaocapViewer.images,
  }));
} catch (error) {
  result = { error: String(error.message ?? error) };
} finally {
  await context.close();
}
console.log(JSON.stringify({ ...result, log }));
