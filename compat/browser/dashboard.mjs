// The dashboard scenario's steps, in a real browser and by keyboard where a user
// would type: sign in, create a key (shown once), create an agent and configure it
// for the widget, add a text source and watch it train, chat in the playground and
// see the streamed answer with its citation, then read the conversation and the
// usage chart. Screenshots of each main page; no console errors or warnings; no
// horizontal scrolling at phone width.

import { assert, step, watchConsole } from "./lib.mjs";
import { INITIAL, KNOWLEDGE, KNOWLEDGE_QUESTION, SUGGESTION, hostPort } from "./widget.mjs";

// The agent made here is the one the widget steps then embed: same knowledge.
const SOURCE = KNOWLEDGE;
const QUESTION = KNOWLEDGE_QUESTION;

/** Waits for the dashboard to land on a page whose heading is `title`. */
export async function heading(page, title) {
  await page.getByRole("heading", { level: 1, name: title }).waitFor();
}

/** Signs in with the operator password and lands on the workspaces page. */
export async function signIn(page, server, password) {
  await page.goto(`${server}/dashboard`);
  await heading(page, "Sign in");
  await page.locator("#password").fill(password);
  await page.keyboard.press("Enter");
  await heading(page, "Workspaces");
}

/** The pages must not scroll sideways at phone width. */
async function fitsWidth(page, what) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  assert(scroll <= width + 1, `${what} scrolls sideways at ${width}px (content ${scroll}px)`);
}

export async function dashboardSteps({ browser, artifacts, server, password, allowedPage, answerFor }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = watchConsole(page);
  try {
    await step("sign in with the operator password, by keyboard", async () => {
      await page.goto(`${server}/dashboard`);
      await heading(page, "Sign in");
      const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
      assert(focused === "password", `the password field has focus, not "${focused}"`);
      await page.keyboard.type("not the password");
      await page.keyboard.press("Enter");
      await page.getByText("That password is not right.").waitFor();
      await page.locator("#password").fill(password);
      await page.keyboard.press("Enter");
      await heading(page, "Workspaces");
      await artifacts.shot(page, "dashboard-workspaces");
    });

    const key = await step("create an API key: shown once, with a copy button", async () => {
      await page.getByRole("link", { name: "Default workspace" }).click();
      await heading(page, "Agents");
      await page.getByRole("link", { name: "API keys" }).click();
      await heading(page, "API keys");
      await page.getByLabel("Name").fill("browser test key");
      await page.getByRole("button", { name: "Create key" }).click();
      const created = (await page.locator("#created-key").textContent()).trim();
      assert(created.startsWith("agb_"), `a key is shown: "${created}"`);
      await page.locator('[data-copy="#created-key"]').waitFor();
      await artifacts.shot(page, "dashboard-key-created");
      const works = await fetch(`${server}/api/v2/agents`, { headers: { authorization: `Bearer ${created}` } });
      assert(works.status === 200, `the new key works against the API: ${works.status}`);
      await page.getByRole("link", { name: "API keys" }).click();
      await heading(page, "API keys");
      const again = await page.content();
      assert(!again.includes(created), "the key is not shown again");
      assert(again.includes("browser test key"), "the key is listed by name");
      return created;
    });

    const agentId = await step("create an agent and configure it for the widget", async () => {
      await page.getByRole("link", { name: "Agents" }).click();
      await heading(page, "Agents");
      await page.getByLabel("Name").fill("Docs bot");
      await page.getByRole("button", { name: "Create agent" }).click();
      await heading(page, "Docs bot");
      const id = (await page.locator("#agent-id").textContent()).trim();
      assert(id.length > 10, `the agent id is shown: "${id}"`);
      await page.getByLabel("Visibility").selectOption("public");
      await page.getByLabel(/Allowed domains/).fill(hostPort(allowedPage));
      await page.getByLabel(/Initial messages/).fill(INITIAL);
      await page.getByLabel(/Suggested messages/).fill(SUGGESTION);
      await page.getByRole("button", { name: "Save settings" }).click();
      await page.getByText("Settings saved.").waitFor();
      await artifacts.shot(page, "dashboard-agent-settings");
      return id;
    });

    await step("every settings control is reachable by keyboard", async () => {
      await page.locator("#name").focus();
      const seen = new Set();
      for (let i = 0; i < 40 && !seen.has("Save settings"); i++) {
        await page.keyboard.press("Tab");
        seen.add(await page.evaluate(() => {
          const el = document.activeElement;
          return el ? (el.id || el.textContent.trim()) : "";
        }));
      }
      for (const id of ["instructions", "model", "temp", "visibility", "allowedDomains", "initialMessages",
        "suggestedMessages", "creditLimit", "ipLimit", "ipTimeframe", "ipMessage", "Save settings"]) {
        assert(seen.has(id), `Tab reaches ${id} (reached: ${[...seen].join(", ")})`);
      }
    });

    await step("add a text source and watch it train (live status)", async () => {
      await page.getByRole("navigation", { name: "Agent" }).getByRole("link", { name: "Sources" }).click();
      await heading(page, "Sources");
      await page.locator("#text-name").fill(SOURCE.name);
      await page.locator("#text-content").fill(SOURCE.content);
      await page.getByRole("button", { name: "Add text" }).click();
      await page.getByText(`Added “${SOURCE.name}”`).waitFor();
      // The page polls training.json and flips the status in place, no reload.
      const status = page.locator("[data-source-status]");
      // Usually still untrained when the page shows; then it flips in place (the
      // page is not reloaded: `navigations` stays put).
      let navigations = 0;
      page.on("framenavigated", () => navigations++);
      await status.filter({ hasText: /^trained$/ }).waitFor({ timeout: 120_000 });
      // The agent stays "training" until its job has swapped the new index in,
      // which can be a poll after the source's own status flips.
      const agent = page.locator("#agent-status");
      await agent.filter({ hasText: /^trained$/ }).waitFor({ timeout: 30_000 }).catch(() => {});
      assert(navigations === 0, "the status changed without reloading the page");
      const shown = (await agent.textContent()).trim();
      assert(shown === "trained", `the agent status follows: "${shown}"`);
      await artifacts.shot(page, "dashboard-sources");
    });

    await step("chat in the playground: a streamed answer with its citation", async () => {
      await page.getByRole("navigation", { name: "Agent" }).getByRole("link", { name: "Playground" }).click();
      await heading(page, "Playground");
      await page.locator("#playground-input").fill(QUESTION);
      await page.keyboard.press("Enter");
      const answer = page.locator('.msg.assistant[data-done="true"]');
      await answer.waitFor({ timeout: 60_000 });
      const text = (await answer.locator(".text").textContent()).trim();
      assert(text === answerFor(QUESTION), `the streamed answer: "${text}"`);
      const cited = await answer.locator(".citations").textContent();
      assert(cited.includes(SOURCE.name), `the answer cites "${SOURCE.name}": "${cited}"`);
      await artifacts.shot(page, "dashboard-playground");
    });

    await step("read the conversation: list, thread with citations", async () => {
      await page.getByRole("navigation", { name: "Agent" }).getByRole("link", { name: "Conversations" }).click();
      await heading(page, "Conversations");
      const row = page.locator("tbody tr").filter({ hasText: "Playground" });
      await row.first().waitFor();
      await artifacts.shot(page, "dashboard-conversations");
      await row.first().getByRole("link").click();
      await heading(page, "Conversation");
      const thread = await page.locator(".thread").textContent();
      assert(thread.includes(QUESTION) && thread.includes(SOURCE.name), `the thread: ${thread}`);
      await artifacts.shot(page, "dashboard-thread");
    });

    await step("usage: credits per day as a chart", async () => {
      await page.getByRole("link", { name: "Usage" }).click();
      await heading(page, "Usage");
      const total = Number(await page.locator("#usage-total").textContent());
      assert(total > 0, `credits were used: ${total}`);
      await page.locator("#usage-chart").waitFor();
      await artifacts.shot(page, "dashboard-usage");
    });

    await step("phone width: pages fit without sideways scrolling", async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      for (const path of [`/agents/${agentId}/sources`, `/agents/${agentId}`, "/usage"]) {
        const url = new URL(page.url());
        const ws = url.pathname.split("/")[3];
        await page.goto(`${server}/dashboard/w/${ws}${path}`);
        await fitsWidth(page, path);
      }
      await artifacts.shot(page, "dashboard-phone");
      await page.setViewportSize({ width: 1280, height: 900 });
    });

    await step("no console errors or warnings on the dashboard", async () => {
      assert(problems.length === 0, problems.join("\n"));
    });
    return { agentId, key };
  } catch (e) {
    await artifacts.shot(page, "failure-dashboard").catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}
