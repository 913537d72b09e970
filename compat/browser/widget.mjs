// The widget scenario's steps: an agent made public through the API (or given), a
// page on an allowed origin embedding the widget, a chat through it, a reload that
// keeps the conversation, keyboard and phone-width checks, and a page on another
// origin that is refused.

import { createHmac } from "node:crypto";
import { createServer } from "node:http";

import { api, assert, step, watchConsole } from "./lib.mjs";

export const INITIAL = "Hello from the widget test! Ask me anything.";
export const SUGGESTION = "What can you do?";

/** host:port of a URL, as `allowedDomains` takes it. */
export function hostPort(url) {
  return new URL(url).host;
}

/** A public agent allowing only `allowedPage`'s host:port, via the API. */
export async function createWidgetAgent({ server, key, allowedPage, name = "Widget test agent", extra = {}, knowledge }) {
  const id = await step(`create the public agent "${name}" through the API`, async () => {
    const agent = await api(server, key, "POST", "/api/v2/agents", { name });
    await api(server, key, "PUT", `/api/v2/agents/${agent.id}`, {
      visibility: "public",
      allowedDomains: [hostPort(allowedPage)],
      initialMessages: [INITIAL],
      suggestedMessages: [{ type: "single", text: SUGGESTION, order: 1 }],
      ...extra,
    });
    return agent.id;
  });
  if (knowledge) {
    await step(`train it on the text source "${knowledge.name}"`, async () => {
      const source = await api(server, key, "POST", `/api/v2/agents/${id}/sources`, { type: "text", ...knowledge });
      const deadline = Date.now() + 120_000;
      for (;;) {
        const now = await api(server, key, "GET", `/api/v2/agents/${id}/sources/${source.id}`);
        if (now.status === "trained") return;
        assert(now.status !== "failed", `training failed: ${JSON.stringify(now)}`);
        assert(Date.now() < deadline, `not trained after 120 s: ${JSON.stringify(now)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    });
  }
  return id;
}

/** The text source the widget agent answers from, and a question it answers. */
export const KNOWLEDGE = {
  name: "Refund policy",
  content: "Refunds are paid to the original card within five business days.",
};
export const KNOWLEDGE_QUESTION = "How are refunds paid?";

export const SLOW_DOWN = "You are sending messages too fast; wait a minute, please.";

/** An agent that takes one message per minute per visitor IP shows its own 429 message. */
export async function rateLimitSteps({ browser, artifacts, server, key, allowedPage, answerFor }) {
  const agentId = await createWidgetAgent({
    server,
    key,
    allowedPage,
    name: "Rate-limited agent",
    extra: { ipRateLimits: { limit: 1, timeframe: 60, message: SLOW_DOWN } },
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  try {
    await step("a 429 shows the agent's message to the visitor", async () => {
      await page.goto(withAgent(allowedPage, agentId));
      await $(page, "widget-bubble").click();
      await $(page, "widget-input").fill("first");
      await $(page, "widget-input").press("Enter");
      await answered(page, answerFor("first"));
      await $(page, "widget-input").fill("second");
      await $(page, "widget-input").press("Enter");
      await $(page, "widget-error").filter({ hasText: SLOW_DOWN }).waitFor();
      const kept = await $(page, "widget-input").inputValue();
      assert(kept === "second", `the refused message is given back to the visitor, saw "${kept}"`);
      await artifacts.shot(page, "widget-rate-limited");
    });
  } catch (e) {
    await artifacts.shot(page, "failure-rate-limit").catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

/**
 * A message sent before the widget's config has arrived: the config's arrival
 * re-renders the log, which once dropped the answer streaming into it (the answer
 * was kept but not shown). The config is held back ~1 s while the scripted model
 * streams slowly, so without the fix the config would land mid-answer.
 */
export async function slowConfigSteps({ browser, artifacts, server, key, allowedPage, answerFor }) {
  const agentId = await createWidgetAgent({ server, key, allowedPage, name: "Slow config agent" });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const problems = watchConsole(page);
  try {
    await step("a message sent before the config arrives keeps its answer on screen", async () => {
      await page.route("**/widget/v1/agents/*/config", async (route) => {
        await new Promise((r) => setTimeout(r, 1000));
        await route.continue();
      });
      await page.goto(withAgent(allowedPage, agentId));
      await $(page, "widget-bubble").click();
      await $(page, "widget-input").fill("[[delay:400]]Early bird");
      await $(page, "widget-input").press("Enter");
      await answered(page, answerFor("Early bird"));
      await $(page, "widget-message-assistant").filter({ hasText: INITIAL }).waitFor();
      const users = await $(page, "widget-message-user").count();
      assert(users === 1, `the message is shown once, saw ${users}`);
      assert(problems.length === 0, problems.join("\n"));
    });
  } catch (e) {
    await artifacts.shot(page, "failure-slow-config").catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

/**
 * A webhook receiver on loopback that checks each delivery the way Chatbase's
 * receivers do: `x-chatbase-signature` against HMAC-SHA1(secret, raw body), hex.
 */
async function webhookReceiver() {
  const received = [];
  const secret = { value: "" };
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const want = createHmac("sha1", secret.value).update(raw).digest("hex");
      const signed = req.headers["x-chatbase-signature"] === want;
      received.push({ signed, body: JSON.parse(raw.toString("utf8")) });
      res.writeHead(signed ? 200 : 400, { "content-type": "application/json" });
      res.end(signed ? "{}" : JSON.stringify({ message: "Signature didn't match" }));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, received, secret, close: () => server.close() };
}

export const LEAD_EMAIL = "visitor@example.com";

/**
 * The lead form: an agent whose v1 `collectCustomerInformation` asks for a name and
 * a required email after the first answer; the visitor is told what is missing,
 * then sends the form; a webhook receiver on loopback gets the signed
 * `leads.submit`. The server must allow private networks (the receiver is local).
 */
export async function leadSteps({ browser, artifacts, server, key, allowedPage, answerFor }) {
  const agentId = await createWidgetAgent({ server, key, allowedPage, name: "Lead agent" });
  const receiver = await webhookReceiver();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  try {
    await step("the agent collects leads and sends leads.submit to a webhook", async () => {
      await api(server, key, "POST", "/api/v1/update-chatbot-settings", {
        chatbotId: agentId,
        collectCustomerInformation: {
          title: "How can we reach you?",
          name: { active: true, label: "Name" },
          email: { active: true, label: "Email", required: true },
          phone: { active: false },
          showAfterAnswers: 1,
        },
      });
      const hook = await api(server, key, "POST", `/api/v2/agents/${agentId}/webhooks`, {
        url: receiver.url,
        events: ["leads.submit"],
      });
      receiver.secret.value = hook.secret;
    });
    await step("the lead form appears after the first answer", async () => {
      await page.goto(withAgent(allowedPage, agentId));
      await $(page, "widget-bubble").click();
      assert((await $(page, "widget-lead-form").count()) === 0, "no form before any answer");
      await $(page, "widget-input").fill("Hi there");
      await $(page, "widget-input").press("Enter");
      await answered(page, answerFor("Hi there"));
      await $(page, "widget-lead-form").filter({ hasText: "How can we reach you?" }).waitFor();
      await artifacts.shot(page, "widget-lead-form");
    });
    await step("a missing required email is named, then the lead is sent", async () => {
      await $(page, "widget-lead-name").fill("Vera Visitor");
      await $(page, "widget-lead-send").click();
      await $(page, "widget-lead-error").filter({ hasText: "email" }).waitFor();
      await $(page, "widget-lead-email").fill(LEAD_EMAIL);
      await $(page, "widget-lead-send").click();
      await $(page, "widget-lead-done").waitFor();
      await artifacts.shot(page, "widget-lead-sent");
    });
    await step("the webhook receiver gets leads.submit with a valid signature", async () => {
      const deadline = Date.now() + 30_000;
      while (!receiver.received.length) {
        assert(Date.now() < deadline, "no leads.submit within 30 s");
        await new Promise((r) => setTimeout(r, 100));
      }
      const [first] = receiver.received;
      assert(first.signed, "x-chatbase-signature is HMAC-SHA1 of the raw body with the endpoint's secret");
      assert(first.body.eventType === "leads.submit", JSON.stringify(first.body));
      assert(first.body.chatbotId === agentId, JSON.stringify(first.body));
      const p = first.body.payload;
      assert(p.customerEmail === LEAD_EMAIL && p.customerName === "Vera Visitor" && p.customerPhone === "",
        JSON.stringify(p));
      const stored = await page.evaluate((id) => JSON.parse(localStorage.getItem(`agentbase-widget:${id}`)), agentId);
      assert(p.conversationId === stored.conversationId, "the lead names the widget's conversation");
    });
    await step("after a reload the sent form stays away", async () => {
      await page.reload();
      await $(page, "widget-bubble").click();
      await $(page, "widget-message-user").filter({ hasText: "Hi there" }).waitFor();
      assert((await $(page, "widget-lead-form").count()) === 0, "the form is not shown again");
    });
  } catch (e) {
    await artifacts.shot(page, "failure-lead").catch(() => {});
    throw e;
  } finally {
    receiver.close();
    await context.close();
  }
  return { leadAgentId: agentId };
}

export const $ = (page, testId) => page.locator(`[data-testid="${testId}"]`);

/** Resolves once the answer `text` is shown and the widget is settled. */
export async function answered(page, text) {
  await $(page, "widget-message-assistant").filter({ hasText: text }).first().waitFor();
  await settled(page);
}

/** Resolves once no answer is streaming and the input is usable again. */
export async function settled(page) {
  await page.locator('[data-testid="widget-input"]:not([disabled])').waitFor();
  await page.waitForFunction(() => {
    const root = document.querySelector("#agentbase-widget")?.shadowRoot;
    return root && !root.querySelector(".pending");
  });
}

/** Which element of the widget has focus (its data-testid), if any. */
function focused(page) {
  return page.evaluate(
    () => document.querySelector("#agentbase-widget")?.shadowRoot?.activeElement?.getAttribute("data-testid") ?? null
  );
}

export function withAgent(url, agentId) {
  const u = new URL(url);
  u.searchParams.set("agent", agentId);
  return u.toString();
}

/**
 * Runs the widget steps. `answerFor(text)` is the answer the server's model gives
 * (the scripted model echoes). Returns what the caller may check on the server.
 */
export async function widgetSteps({ browser, artifacts, agentId, allowedPage, refusedPage, answerFor }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  try {
    return await chatSteps({ browser, artifacts, page, agentId, allowedPage, refusedPage, answerFor });
  } catch (e) {
    await artifacts.shot(page, "failure-widget").catch(() => {});
    throw e;
  } finally {
    await context.close();
  }
}

async function chatSteps({ browser, artifacts, page, agentId, allowedPage, refusedPage, answerFor }) {
  const problems = watchConsole(page);
  const allowedUrl = withAgent(allowedPage, agentId);

  await step("the allowed page shows the bubble", async () => {
    await page.goto(allowedUrl);
    await $(page, "widget-bubble").waitFor();
    const label = await $(page, "widget-bubble").getAttribute("aria-label");
    assert(label === "Open chat", `bubble aria-label: ${label}`);
    assert(await $(page, "widget-panel").isHidden(), "the panel starts closed");
    await artifacts.shot(page, "widget-bubble");
  });

  await step("opening shows the initial and suggested messages", async () => {
    await $(page, "widget-bubble").click();
    await $(page, "widget-panel").waitFor();
    await $(page, "widget-message-assistant").filter({ hasText: INITIAL }).waitFor();
    await $(page, "widget-suggestion").filter({ hasText: SUGGESTION }).waitFor();
    assert((await focused(page)) === "widget-input", "focus moves to the message box");
    await artifacts.shot(page, "widget-open");
  });

  await step("a suggested message is sent and its answer streams in", async () => {
    await $(page, "widget-suggestion").filter({ hasText: SUGGESTION }).click();
    await $(page, "widget-message-user").filter({ hasText: SUGGESTION }).waitFor();
    await answered(page, answerFor(SUGGESTION));
    assert(await $(page, "widget-suggestions").isHidden(), "suggestions give way to the conversation");
  });

  const typed = KNOWLEDGE_QUESTION;
  await step("a typed message is sent with Enter and its answer cites the knowledge", async () => {
    await $(page, "widget-input").fill(typed);
    await $(page, "widget-input").press("Enter");
    await answered(page, answerFor(typed));
    const answer = $(page, "widget-message-assistant").filter({ hasText: answerFor(typed) });
    await answer.locator('[data-testid="widget-source"]').filter({ hasText: KNOWLEDGE.name }).first().waitFor();
    await artifacts.shot(page, "widget-answer");
  });

  const stored = await page.evaluate((id) => JSON.parse(localStorage.getItem(`agentbase-widget:${id}`)), agentId);
  assert(stored && stored.conversationId, "the conversation id is kept in localStorage");

  await step("Escape closes the panel and returns focus to the bubble", async () => {
    await page.keyboard.press("Escape");
    await $(page, "widget-panel").waitFor({ state: "hidden" });
    assert((await focused(page)) === "widget-bubble", `focus is on ${await focused(page)}`);
  });

  const again = "And continued after a reload?";
  await step("after a reload the conversation is shown and continues", async () => {
    await page.reload();
    await $(page, "widget-bubble").click();
    await $(page, "widget-message-user").filter({ hasText: typed }).waitFor();
    const cited = $(page, "widget-message-assistant").filter({ hasText: answerFor(typed) });
    await cited.locator('[data-testid="widget-source"]').filter({ hasText: KNOWLEDGE.name }).first().waitFor();
    const users = await $(page, "widget-message-user").count();
    assert(users === 2, `two visitor messages after the reload, saw ${users}`);
    await $(page, "widget-input").fill(again);
    await $(page, "widget-send").click();
    await answered(page, answerFor(again));
    const now = await page.evaluate((id) => JSON.parse(localStorage.getItem(`agentbase-widget:${id}`)), agentId);
    assert(now.conversationId === stored.conversationId, "the same conversation continued");
  });

  await step("at phone width the panel fills the screen", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const box = await $(page, "widget-panel").boundingBox();
    assert(
      box && box.x === 0 && box.y === 0 && box.width === 390 && box.height === 844,
      `panel box at 390x844: ${JSON.stringify(box)}`
    );
    await artifacts.shot(page, "widget-phone");
  });

  await step("the allowed page logged no console errors or warnings", async () => {
    assert(problems.length === 0, problems.join("\n"));
  });

  const refused = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const other = await refused.newPage();
  try {
    await step("a page on a domain that is not allowed is refused", async () => {
      await other.goto(withAgent(refusedPage, agentId));
      await $(other, "widget-bubble").click();
      await $(other, "widget-error").filter({ hasText: "not allowed" }).waitFor();
      assert(await $(other, "widget-input").isDisabled(), "the refused widget cannot send");
      await artifacts.shot(other, "widget-refused");
    });
  } catch (e) {
    await artifacts.shot(other, "failure-refused").catch(() => {});
    throw e;
  } finally {
    await refused.close();
  }

  return { conversationId: stored.conversationId, messages: 6 };
}
