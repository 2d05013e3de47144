// The approval page as a person sees it: opens it in Debian's headless Chromium (driven by
// playwright-core, which downloads no browser of its own), reads what is on it, and optionally
// clicks Approve or Deny and reads the page the decision answers with.
//
//   node test-tools/browser/approval-page.mjs '{"url": "http://127.0.0.1:PORT/api/approvals/ID",
//     "action": "approve" | "deny" | "none", "headers": {"X-MS-CLIENT-PRINCIPAL": "..."},
//     "executablePath": "/usr/bin/chromium"}'
//
// Prints one JSON object on stdout and exits 0, also when the page is not what a test expects
// (then `error` says what went wrong). Exits 1 with a message on stderr only when the browser
// cannot run at all (playwright-core or Chromium missing, a bad argument).
//
// Used by crates/handler/tests/integration/common/browser.rs; ./scripts/test installs Chromium and the tools.

import { existsSync } from "node:fs";

function fail(message) {
  process.stderr.write(`approval-page.mjs: ${message}\n`);
  process.exit(1);
}

let request;
try {
  request = JSON.parse(process.argv[2] ?? "");
} catch (error) {
  fail(`the first argument must be a JSON object like {"url": "...", "action": "none"} (${error.message})`);
}
const { url, action = "none", headers = {} } = request ?? {};
if (typeof url !== "string" || url === "") fail('"url" is missing');
if (!["approve", "deny", "none"].includes(action)) fail(`"action" must be approve, deny or none, not ${JSON.stringify(action)}`);
if (typeof headers !== "object" || headers === null || Array.isArray(headers)) fail('"headers" must be an object');
const extraHTTPHeaders = Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, String(value)]));
const executablePath = request.executablePath || process.env.CHROMIUM_PATH || "/usr/bin/chromium";

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (error) {
  fail(`playwright-core is not installed in test-tools (${error.message}); run ./scripts/test, which installs it with npm`);
}
if (!existsSync(executablePath)) {
  fail(`Chromium is not installed at ${executablePath}; run ./scripts/test, which installs Chromium (Debian's chromium package)`);
}

let browser;
try {
  // --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start.
  browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
} catch (error) {
  fail(`could not start Chromium (${executablePath}): ${error.message}`);
}

const TIMEOUT_MS = 30_000;

// Everything a test reads off the page, in the page itself.
function readPage() {
  const text = (element) => (element?.textContent ?? "").replace(/\s+/g, " ").trim();
  const status = document.querySelector('[role="status"], [role="alert"]');
  const tables = [...document.querySelectorAll("table")];
  const targetsTable = tables.find((table) => /target/i.test(text(table.caption))) ?? tables[0];
  const targets = targetsTable
    ? [...targetsTable.querySelectorAll("tbody tr")].map((row) => text(row.querySelector('th[scope="row"]')))
    : [];
  const definitions = {};
  for (const term of document.querySelectorAll("dl > dt")) {
    let value = term.nextElementSibling;
    while (value && value.tagName !== "DD" && value.tagName !== "DT") value = value.nextElementSibling;
    definitions[text(term)] = value?.tagName === "DD" ? text(value) : "";
  }
  return {
    title: document.title,
    h1: text(document.querySelector("h1")),
    statusText: text(status),
    targets,
    definitions,
    lang: document.documentElement.getAttribute("lang") ?? "",
  };
}

// The buttons a person can see, with their text, and how many have no accessible name (as
// Playwright's accessibility tree computes it: aria-label, aria-labelledby, content, value, title).
async function readButtons(page) {
  const buttons = [];
  let unlabelled = 0;
  for (const button of await page.getByRole("button").all()) {
    if (!(await button.isVisible())) continue;
    const shown = (await button.evaluate((element) => element.innerText || element.value || ""))
      .replace(/\s+/g, " ")
      .trim();
    buttons.push(shown);
    const snapshot = (await button.ariaSnapshot()).trim();
    // `- button "Approve"` when named, `- button` (maybe with [attributes] or children) when not.
    if (!/^- button\s+"(?:[^"\\]|\\.)+"/.test(snapshot) && !/^- button\s+\/.+\//.test(snapshot)) unlabelled += 1;
  }
  return { buttons, unlabelled };
}

const result = {
  url,
  status: 0,
  title: "",
  h1: "",
  statusText: "",
  targets: [],
  definitions: {},
  buttons: [],
  lang: "",
  unlabelledButtons: 0,
  after: null,
  error: null,
};

try {
  const context = await browser.newContext({ extraHTTPHeaders });
  context.setDefaultTimeout(TIMEOUT_MS);
  const page = await context.newPage();
  let response;
  try {
    response = await page.goto(url, { waitUntil: "load", timeout: TIMEOUT_MS });
  } catch (error) {
    result.error = `could not open ${url}: ${error.message.split("\n")[0]}`;
  }
  if (response) {
    result.status = response.status();
    Object.assign(result, await page.evaluate(readPage));
    const { buttons, unlabelled } = await readButtons(page);
    result.buttons = buttons;
    result.unlabelledButtons = unlabelled;

    if (action !== "none") {
      const label = action === "approve" ? "Approve" : "Deny";
      const button = page.getByRole("button", { name: label, exact: true });
      if ((await button.count()) === 0) {
        result.error = `there is no ${label} button on the page (buttons: ${JSON.stringify(buttons)})`;
      } else {
        // The answer to the form: the main frame's next navigation response that is not a redirect.
        const answered = page.waitForEvent("response", {
          predicate: (r) =>
            r.request().isNavigationRequest() &&
            r.frame() === page.mainFrame() &&
            (r.status() < 300 || r.status() >= 400),
          timeout: TIMEOUT_MS,
        });
        await button.first().click();
        const answer = await answered;
        await page.waitForLoadState("load");
        const after = await page.evaluate(readPage);
        const afterButtons = await readButtons(page);
        result.after = {
          status: answer.status(),
          method: answer.request().method(),
          url: answer.url(),
          statusText: after.statusText,
          buttons: afterButtons.buttons,
        };
      }
    }
  }
} catch (error) {
  result.error = `${error.message.split("\n")[0]}`;
} finally {
  await browser.close().catch(() => {});
}

process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
