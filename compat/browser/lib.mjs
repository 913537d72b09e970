// Shared pieces of the browser scenarios: Debian's chromium driven by
// playwright-core (never a downloaded browser), screenshots, console watching and
// named steps whose failures say where they happened.

import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";

/** A required environment variable. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** The system chromium: $CHROMIUM_PATH, else Debian's binary (or its wrapper). */
export function chromiumPath() {
  const candidates = [
    process.env.CHROMIUM_PATH,
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`no chromium found (tried ${candidates.join(", ")}); apt-get install chromium`);
  }
  return found;
}

/** Headless chromium; --no-sandbox only when running as root (CI). */
export async function launch() {
  const args = ["--disable-dev-shm-usage"];
  if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args });
}

/** Screenshots saved under one directory; `paths` lists them in order. */
export class Artifacts {
  constructor(dir) {
    this.dir = resolve(dir);
    mkdirSync(this.dir, { recursive: true });
    this.paths = [];
  }

  async shot(page, name) {
    const path = join(this.dir, `${name}.png`);
    await page.screenshot({ path, fullPage: false });
    this.paths.push(path);
    console.log(`screenshot: ${path}`);
    return path;
  }
}

/** Collects console errors and warnings and uncaught page errors. */
export function watchConsole(page) {
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") {
      problems.push(`console.${m.type()}: ${m.text()} (${m.location().url || "?"})`);
    }
  });
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message}`));
  return problems;
}

/** Runs one named step; a failure names the step (and keeps the cause). */
export async function step(name, fn) {
  const started = Date.now();
  try {
    const result = await fn();
    console.log(`ok   ${name} (${Date.now() - started} ms)`);
    return result;
  } catch (e) {
    console.log(`FAIL ${name}`);
    throw new Error(`step "${name}" failed: ${e.message}`, { cause: e });
  }
}

export function assert(condition, message) {
  if (!condition) throw new Error(message);
}

/** A JSON API call with the key (the test harness's, never the page's). */
export async function api(base, key, method, path, body) {
  const response = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
