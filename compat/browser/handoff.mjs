// The human handoff, with two people in two browser contexts: a visitor chatting
// through the widget and an operator signed in to the dashboard.
//
//   1. The visitor chats, then presses "Talk to a person": the conversation becomes
//      a ticket and the AI falls silent.
//   2. The operator finds the ticket on the agent's Tickets page and opens its
//      conversation. A visitor message gets no AI answer and reaches the operator's
//      page live; the operator's reply reaches the widget live (no reload on either
//      side: both long-poll).
//   3. The operator hands the conversation back and the AI answers again; taking it
//      over from the dashboard silences the AI once more.

import { assert, step, watchConsole } from "./lib.mjs";
import { heading, signIn } from "./dashboard.mjs";
import { $, answered, createWidgetAgent, settled, withAgent } from "./widget.mjs";

export const HANDOFF = {
  hello: "Hello, bot",
  waiting: "Are you a person?",
  reply: "Hi, I am a person. How can I help?",
  back: "Back to the bot?",
  again: "Anyone there?",
};

/** Counts the main frame's navigations from now on (a reload would be one). */
function navigations(page) {
  const seen = { count: 0 };
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) seen.count++;
  });
  return seen;
}

/** The widget's conversation id, as it keeps it in localStorage. */
async function widgetConversation(page, agentId) {
  const stored = await page.evaluate((id) => JSON.parse(localStorage.getItem(`agentbase-widget:${id}`)), agentId);
  return stored && stored.conversationId;
}

/**
 * The visitor sends `text` while a person answers: the message is shown, the
 * stream ends without an answer (the widget is usable again), the conversation is
 * the same one, and the operator's page shows the message live.
 */
async function silentTurn({ visitor, operator, agentId, conversationId, text, answerFor }) {
  const moved = navigations(operator);
  await $(visitor, "widget-input").fill(text);
  await $(visitor, "widget-input").press("Enter");
  await $(visitor, "widget-message-user").filter({ hasText: text }).waitFor();
  await settled(visitor);
  const echoed = await $(visitor, "widget-message-assistant").filter({ hasText: answerFor(text) }).count();
  assert(echoed === 0, `the AI answered "${text}" while a person has the conversation`);
  const now = await widgetConversation(visitor, agentId);
  assert(now === conversationId, `the widget stayed in its conversation (${now} vs ${conversationId})`);
  const live = operator.locator('#thread li.msg.user[data-live="true"]').filter({ hasText: text });
  await live.waitFor({ timeout: 30_000 });
  assert(moved.count === 0, "the visitor's message reached the operator's page without a reload");
  await live.scrollIntoViewIfNeeded();
}

export async function handoffSteps({ browser, artifacts, server, key, password, allowedPage, answerFor }) {
  const agentName = "Handoff agent";
  const agentId = await createWidgetAgent({ server, key, allowedPage, name: agentName });
  const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const operatorContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const visitor = await visitorContext.newPage();
  const operator = await operatorContext.newPage();
  const problems = [["visitor", watchConsole(visitor)], ["operator", watchConsole(operator)]];
  let conversationId = null;
  let ticketNumber = null;
  try {
    conversationId = await step("the visitor chats, then asks for a person", async () => {
      await visitor.goto(withAgent(allowedPage, agentId));
      await $(visitor, "widget-bubble").click();
      await $(visitor, "widget-input").fill(HANDOFF.hello);
      await $(visitor, "widget-input").press("Enter");
      await answered(visitor, answerFor(HANDOFF.hello));
      const id = await widgetConversation(visitor, agentId);
      assert(id, "the widget has a conversation");
      await $(visitor, "widget-handoff").click();
      await visitor.locator('[data-testid="widget-message-assistant"][data-kind="handoff"]').waitFor();
      await $(visitor, "widget-handoff").waitFor({ state: "hidden" });
      await artifacts.shot(visitor, "widget-handoff-asked");
      return id;
    });

    ticketNumber = await step("the operator, in a second context, finds the ticket and opens it", async () => {
      await signIn(operator, server, password);
      await operator.getByRole("link", { name: "Default workspace" }).click();
      await heading(operator, "Agents");
      await operator.getByRole("link", { name: agentName }).click();
      await heading(operator, agentName);
      await operator.getByRole("navigation", { name: "Agent" }).getByRole("link", { name: "Tickets" }).click();
      await heading(operator, "Tickets");
      const row = operator.locator(`tbody tr:has(a[href$="/conversations/${conversationId}"])`);
      await row.waitFor();
      const number = Number((await row.locator('[data-testid="ticket-number"]').textContent()).trim().slice(1));
      assert(number > 0, `the ticket has a number: ${number}`);
      const cells = await row.textContent();
      assert(cells.includes("iframe"), `the ticket came from the widget: ${cells}`);
      await artifacts.shot(operator, "dashboard-tickets");
      await row.getByRole("link").click();
      await heading(operator, "Conversation");
      // The visitor's request took the conversation over: the operator answers it.
      const status = await operator.locator("#handoff").getAttribute("data-status");
      assert(status === "taken_over", `the conversation is taken over: ${status}`);
      assert((await $(operator, "handoff-take-over").count()) === 0, "no take-over button on a taken-over conversation");
      await $(operator, "handoff-reply-text").waitFor();
      return number;
    });

    await step("while taken over the AI is silent; the visitor's message reaches the operator live", async () => {
      await silentTurn({ visitor, operator, agentId, conversationId, text: HANDOFF.waiting, answerFor });
      await artifacts.shot(operator, "dashboard-handoff-live");
    });

    await step("the operator's reply appears in the widget without a reload", async () => {
      const moved = navigations(visitor);
      await $(operator, "handoff-reply-text").fill(HANDOFF.reply);
      const sent = Date.now();
      await $(operator, "handoff-reply-send").click();
      await operator.getByText("Reply sent.").waitFor();
      await visitor
        .locator('[data-testid="widget-message-assistant"][data-kind="human"]')
        .filter({ hasText: HANDOFF.reply })
        .waitFor({ timeout: 30_000 });
      console.log(`     the reply reached the widget ${Date.now() - sent} ms after Send`);
      assert(moved.count === 0, "the widget was not reloaded");
      await operator.locator("#thread li.msg").last().scrollIntoViewIfNeeded();
      await artifacts.shot(operator, "dashboard-handoff-reply");
      await artifacts.shot(visitor, "widget-handoff-reply");
    });

    await step("the operator hands back and the AI answers again", async () => {
      await $(operator, "handoff-hand-back").click();
      await operator.getByText("Handed back: the AI answers again.").waitFor();
      await $(operator, "handoff-take-over").waitFor();
      await $(visitor, "widget-input").fill(HANDOFF.back);
      await $(visitor, "widget-input").press("Enter");
      await answered(visitor, answerFor(HANDOFF.back));
      // The widget learns the hand-back from its live feed: the button is back.
      await $(visitor, "widget-handoff").waitFor({ timeout: 30_000 });
      // The operator's page follows the conversation live, the AI's answer too.
      await operator
        .locator('#thread li.msg.assistant[data-live="true"]')
        .filter({ hasText: answerFor(HANDOFF.back) })
        .waitFor({ timeout: 30_000 });
      await artifacts.shot(visitor, "widget-handed-back");
    });

    await step("taking over from the dashboard silences the AI again (same ticket)", async () => {
      await $(operator, "handoff-take-over").click();
      await operator.getByText(`Taken over as ticket #${ticketNumber}.`).waitFor();
      await $(operator, "handoff-reply-text").waitFor();
      await silentTurn({ visitor, operator, agentId, conversationId, text: HANDOFF.again, answerFor });
      await artifacts.shot(operator, "dashboard-handoff-taken-over");
    });

    await step("no console errors or warnings for the visitor or the operator", async () => {
      const all = problems.flatMap(([who, list]) => list.map((p) => `${who}: ${p}`));
      assert(all.length === 0, all.join("\n"));
    });
  } catch (e) {
    await artifacts.shot(visitor, "failure-handoff-visitor").catch(() => {});
    await artifacts.shot(operator, "failure-handoff-operator").catch(() => {});
    throw e;
  } finally {
    await visitorContext.close();
    await operatorContext.close();
  }
  return { handoffAgentId: agentId, handoffConversationId: conversationId, handoffTicketNumber: ticketNumber };
}
