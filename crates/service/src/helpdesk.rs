//! The helpdesk and the human handoff. Tickets, their statuses, teams and threads
//! as the v2 helpdesk operations define them; a conversation becomes a ticket and
//! is `taken_over` when an operator takes it, the visitor asks for a person or the
//! model escalates. While it is taken over the AI stays silent: the visitor's
//! messages go to the ticket's thread, the operator's replies go to both the
//! thread and the conversation (with their author), and handing back resumes the
//! AI. Live delivery is a poll of the conversation's messages after a position
//! ([`Helpdesk::messages_after`]), so it works whichever node wrote them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agentbase_core::conversation::{Conversation, ConversationStatus, Message, MessageRole, Part};
use agentbase_core::helpdesk::{
    self, Customer, DEFAULT_STATUSES, DEFAULT_TEAM, NewTicketInput, Sender, Team, Ticket,
    TicketCursor, TicketFilter, TicketMessage, TicketPatch, TicketStatus,
};
use agentbase_core::member::Member;
use agentbase_core::webhook::OutboxEvent;
use agentbase_core::{Clock, Cursor, Error, Millis, Rejection, Resource, Result, ids};
use agentbase_store::{Page, Store, TicketWrite};

use crate::widget::WidgetAgent;
use crate::{Agents, Principal};

/// Who asked for the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// An operator, from the dashboard or the API.
    Operator,
    /// The visitor (the widget's "talk to a person" button).
    Visitor,
    /// The model, through the built-in escalation action.
    Model,
}

impl Handoff {
    pub fn as_str(self) -> &'static str {
        match self {
            Handoff::Operator => "operator",
            Handoff::Visitor => "visitor",
            Handoff::Model => "model",
        }
    }
}

pub use agentbase_core::agent::ESCALATION_ACTION;

/// What the answer says when the model hands the conversation over.
pub const ESCALATION_NOTICE: &str =
    "I have asked a person from the team to take over. They will answer you here.";

/// Which page of a ticket's thread to read (`listTicketMessages`).
#[derive(Debug, Clone)]
pub struct ThreadQuery {
    pub kinds: Vec<String>,
    pub cursor: Option<String>,
    pub ascending: bool,
    pub limit: u32,
}

/// Most matches one ticket search looks at before ranking.
const SEARCH_ROWS: i64 = 2_000;

/// How long a live poll waits for something new, and how often it looks.
pub const LIVE_WAIT: Duration = Duration::from_secs(20);
const LIVE_EVERY: Duration = Duration::from_millis(400);

/// A conversation message as a live subscriber sees it.
#[derive(Debug, Clone)]
pub struct LiveMessage {
    pub message: Message,
    /// The person who wrote it (operator replies); `None`: the AI or the user.
    pub author: Option<Sender>,
}

fn no_events(_: &Ticket) -> Vec<OutboxEvent> {
    Vec::new()
}

fn event_message(ticket: &Ticket, at: i64, metadata: serde_json::Value) -> TicketMessage {
    TicketMessage {
        id: ids::uuid_v4(),
        ticket_id: ticket.id.clone(),
        seq: 0,
        kind: "event".into(),
        sender: None,
        content: None,
        content_text: None,
        metadata: Some(metadata),
        created_at: at,
    }
}

fn reply_message(ticket_id: &str, sender: Sender, text: &str, at: i64) -> TicketMessage {
    TicketMessage {
        id: ids::uuid_v4(),
        ticket_id: ticket_id.to_owned(),
        seq: 0,
        kind: "reply".into(),
        sender: Some(sender),
        content: Some(helpdesk::render_content(text).unwrap_or_default()),
        content_text: Some(text.to_owned()),
        metadata: None,
        created_at: at,
    }
}

/// Tickets, their statuses and teams, taking conversations over and handing them
/// back, and the live messages the dashboard and the widget poll for. It reads
/// conversations through the chat service and checks visitors through the widget;
/// the steps a chat turn itself takes are [`Handoffs`], which both share.
pub struct Helpdesk {
    store: Store,
    clock: Arc<dyn Clock>,
    agents: Arc<Agents>,
    members: Arc<crate::members::Members>,
    handoffs: Arc<Handoffs>,
    conversations: Arc<crate::chat::Conversations>,
    widget: Arc<crate::widget::Widget>,
}

/// What [`Helpdesk`] is built from.
pub(crate) struct HelpdeskParts {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub agents: Arc<Agents>,
    pub members: Arc<crate::members::Members>,
    pub handoffs: Arc<Handoffs>,
    pub conversations: Arc<crate::chat::Conversations>,
    pub widget: Arc<crate::widget::Widget>,
}

impl Helpdesk {
    pub(crate) fn new(p: HelpdeskParts) -> Self {
        Helpdesk {
            store: p.store,
            clock: p.clock,
            agents: p.agents,
            members: p.members,
            handoffs: p.handoffs,
            conversations: p.conversations,
            widget: p.widget,
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The agent's statuses and teams, written on first use.
    async fn helpdesk_setup(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<(Vec<TicketStatus>, Vec<Team>)> {
        self.handoffs.helpdesk_setup(workspace_id, agent_id).await
    }

    pub async fn ticket_statuses(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<Vec<TicketStatus>> {
        Ok(self.helpdesk_setup(workspace_id, agent_id).await?.0)
    }

    /// The agent's teams. The default team is the workspace's members, the ones
    /// tickets can be assigned to (invited ones included): `memberCount` counts them.
    pub async fn helpdesk_teams(&self, workspace_id: &str, agent_id: &str) -> Result<Vec<Team>> {
        let mut teams = self.helpdesk_setup(workspace_id, agent_id).await?.1;
        let members = self.members.list(workspace_id).await?.len() as i64;
        for t in teams.iter_mut().filter(|t| t.is_default) {
            t.member_count = members;
        }
        Ok(teams)
    }

    /// The status a ticket gets from `statusId` or `statusCategory` (one of them
    /// at most), or the `fallback` category's default.
    fn pick_status(
        statuses: &[TicketStatus],
        id: Option<&str>,
        category: Option<&str>,
        fallback: &str,
    ) -> Result<TicketStatus> {
        let found = match (id, category) {
            (Some(id), _) => statuses.iter().find(|s| s.id == id),
            (None, c) => {
                let c = c.unwrap_or(fallback);
                statuses
                    .iter()
                    .find(|s| s.category == c && s.is_default)
                    .or_else(|| statuses.iter().find(|s| s.category == c))
            }
        };
        found
            .cloned()
            .ok_or(Error::Rejected(Rejection::TicketInvalidStatus))
    }

    /// The workspace member a ticket's assignee or a reply's author names (by id,
    /// else by email; invited members count); `missing` when it names none.
    async fn team_member(
        &self,
        workspace_id: &str,
        id: Option<&str>,
        email: Option<&str>,
        missing: Rejection,
    ) -> Result<Member> {
        let found = match (id, email) {
            (Some(id), _) => self.members.member_by_id(workspace_id, id).await?,
            (None, Some(email)) => self.members.member_by_email(workspace_id, email).await?,
            (None, None) => None,
        };
        found.ok_or(Error::Rejected(missing))
    }

    /// A reply's author (`authorId` or `authorEmail`) as a member of the workspace.
    pub async fn ticket_author(
        &self,
        workspace_id: &str,
        id: Option<&str>,
        email: Option<&str>,
    ) -> Result<Sender> {
        let m = self
            .team_member(workspace_id, id, email, Rejection::TeamMemberNotFound)
            .await?;
        Ok(Sender::agent(Some(m.id), Some(m.email), Some(m.name)))
    }

    /// The assignee a create or update names, as (id, email) of a member; `None`
    /// when it names nobody.
    async fn assignee(
        &self,
        workspace_id: &str,
        id: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<(String, String)>> {
        if id.is_none() && email.is_none() {
            return Ok(None);
        }
        let m = self
            .team_member(workspace_id, id, email, Rejection::TicketTeamMemberNotFound)
            .await?;
        Ok(Some((m.id, m.email)))
    }

    fn check_team(teams: &[Team], id: Option<&str>) -> Result<()> {
        match id {
            Some(id) if !teams.iter().any(|t| t.id == id) => {
                Err(Error::Rejected(Rejection::TicketTeamNotFound))
            }
            _ => Ok(()),
        }
    }

    /// `createTicket`: a ticket without a conversation; the description is its
    /// first message, a reply by the customer.
    pub async fn create_ticket(
        &self,
        workspace_id: &str,
        agent_id: &str,
        input: NewTicketInput,
    ) -> Result<Ticket> {
        let (statuses, teams) = self.helpdesk_setup(workspace_id, agent_id).await?;
        let problems = input.problems();
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let status = Self::pick_status(
            &statuses,
            input.status_id.as_deref(),
            input.status_category.as_deref(),
            "new",
        )?;
        Self::check_team(&teams, input.team_id.as_deref())?;
        let assignee = self
            .assignee(
                workspace_id,
                input.assignee_id.as_ref().and_then(|a| a.as_deref()),
                input.assignee_email.as_deref(),
            )
            .await?;
        let email = input.customer_email.unwrap_or_default().to_lowercase();
        let now = self.now();
        let description = input.description.unwrap_or_default();
        let customer = Customer {
            id: helpdesk::customer_id(agent_id, &email),
            name: input.customer_name,
            email: Some(email),
            phone: None,
        };
        let t = Ticket {
            id: ids::uuid_v4(),
            workspace_id: workspace_id.to_owned(),
            agent_id: agent_id.to_owned(),
            number: 0,
            conversation_id: None,
            subject: input.subject,
            description: Some(description.clone()),
            status_id: status.id,
            status_category: status.category,
            assignee_id: assignee.as_ref().map(|(id, _)| id.clone()),
            assignee_email: assignee.map(|(_, email)| email),
            team_id: input.team_id,
            priority: input.priority.unwrap_or_else(|| "none".into()),
            channel: "helpdesk".into(),
            customer: customer.clone(),
            metadata: serde_json::json!({}),
            created_at: now,
            updated_at: now,
            last_message_at: Some(now),
        };
        let first = reply_message(&t.id, Sender::customer(&customer), &description, now);
        self.store
            .write_ticket(TicketWrite {
                ticket: t,
                new: true,
                messages: vec![first],
                reply: None,
                conversation_status: None,
                events: &|t| vec![helpdesk::ticket_created(t)],
            })
            .await
    }

    pub async fn ticket(&self, workspace_id: &str, agent_id: &str, number: i64) -> Result<Ticket> {
        self.agents.get(workspace_id, agent_id).await?;
        self.store
            .ticket(workspace_id, agent_id, number)
            .await?
            .ok_or(Error::NotFound(Resource::Ticket))
    }

    /// `listTickets`. A cursor issued for another `sortBy`/`order` is refused.
    pub async fn tickets(
        &self,
        workspace_id: &str,
        agent_id: &str,
        filter: &TicketFilter,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<Page<Ticket>> {
        self.agents.get(workspace_id, agent_id).await?;
        let after = match cursor {
            None => None,
            Some(text) => match TicketCursor::decode(text) {
                Some(c) if c.s == filter.sort && c.asc == filter.ascending => Some(c),
                Some(_) => {
                    return Err(Error::invalid(
                        "cursor",
                        "was issued for another sortBy or order",
                    ));
                }
                None => return Err(Error::invalid("cursor", "is not a cursor of this list")),
            },
        };
        self.store
            .tickets(workspace_id, agent_id, filter, after.as_ref(), limit)
            .await
    }

    /// The cursor after the last ticket of a page.
    pub fn ticket_cursor(filter: &TicketFilter, last: &Ticket) -> String {
        TicketCursor {
            s: filter.sort,
            asc: filter.ascending,
            t: filter.sort.key(last),
            id: last.id.clone(),
        }
        .encode()
    }

    /// `searchTickets`: tickets whose subject or messages mention the query's
    /// words, most mentions first (then most recently updated); whether more
    /// matched than `limit`.
    pub async fn search_tickets(
        &self,
        workspace_id: &str,
        agent_id: &str,
        query: &str,
        limit: usize,
    ) -> Result<(Vec<Ticket>, bool)> {
        self.agents.get(workspace_id, agent_id).await?;
        let terms: Vec<String> = query
            .split_whitespace()
            .map(str::to_lowercase)
            .take(16)
            .collect();
        if terms.is_empty() {
            return Err(Error::invalid("query", "must not be empty"));
        }
        let rows = self
            .store
            .ticket_search_rows(workspace_id, agent_id, &terms, SEARCH_ROWS)
            .await?;
        let mut scored: HashMap<String, (Ticket, usize)> = HashMap::new();
        for (t, text) in rows {
            let text = text.to_lowercase();
            let hits: usize = terms
                .iter()
                .map(|term| text.matches(term.as_str()).count())
                .sum();
            scored.entry(t.id.clone()).or_insert_with(|| (t, 0)).1 += hits;
        }
        let mut ranked: Vec<(Ticket, usize)> = scored.into_values().collect();
        ranked.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(b.0.updated_at.cmp(&a.0.updated_at))
                .then(b.0.number.cmp(&a.0.number))
        });
        let more = ranked.len() > limit;
        Ok((
            ranked.into_iter().take(limit).map(|(t, _)| t).collect(),
            more,
        ))
    }

    /// `updateTicket`: every field checked first, then written together with a
    /// timeline event for a status change and the `ticket.updated` webhook.
    pub async fn update_ticket(
        &self,
        workspace_id: &str,
        agent_id: &str,
        number: i64,
        patch: TicketPatch,
    ) -> Result<Ticket> {
        let mut t = self.ticket(workspace_id, agent_id, number).await?;
        let problems = patch.problems();
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let (statuses, teams) = self.helpdesk_setup(workspace_id, agent_id).await?;
        let status = if patch.status_id.is_some() || patch.status_category.is_some() {
            Some(Self::pick_status(
                &statuses,
                patch.status_id.as_deref(),
                patch.status_category.as_deref(),
                "new",
            )?)
        } else {
            None
        };
        if let Some(Some(team)) = &patch.team_id {
            Self::check_team(&teams, Some(team))?;
        }
        let now = self.now();
        let mut events = Vec::new();
        if let Some(s) = status
            && s.id != t.status_id
        {
            events.push(event_message(
                &t,
                now,
                serde_json::json!({
                    "eventType": "status_change",
                    "statusFrom": t.status_category,
                    "statusTo": s.category,
                    "doneBy": null,
                }),
            ));
            t.status_id = s.id;
            t.status_category = s.category;
        }
        if patch.assignee_id.is_some() || patch.assignee_email.is_some() {
            let named = self
                .assignee(
                    workspace_id,
                    patch.assignee_id.as_ref().and_then(|a| a.as_deref()),
                    patch.assignee_email.as_deref(),
                )
                .await?;
            (t.assignee_id, t.assignee_email) = named.unzip();
        }
        if let Some(team) = patch.team_id {
            t.team_id = team;
        }
        if let Some(p) = patch.priority {
            t.priority = p;
        }
        t.updated_at = now;
        self.store
            .write_ticket(TicketWrite {
                ticket: t,
                new: false,
                messages: events,
                reply: None,
                conversation_status: None,
                events: &|t| vec![helpdesk::ticket_updated(t)],
            })
            .await
    }

    /// `listTicketMessages`: `kinds` of the thread in `seq` order; the cursor is
    /// the last position seen and the direction it was issued for.
    pub async fn ticket_messages(
        &self,
        workspace_id: &str,
        agent_id: &str,
        number: i64,
        q: &ThreadQuery,
    ) -> Result<Page<TicketMessage>> {
        let t = self.ticket(workspace_id, agent_id, number).await?;
        let (kinds, ascending, limit) = (&q.kinds, q.ascending, q.limit);
        let cursor = q.cursor.as_deref();
        let dir = if ascending { "asc" } else { "desc" };
        let after = match cursor {
            None => None,
            Some(text) => match Cursor::decode(text) {
                Some(c) if c.id == dir => Some(c.t),
                Some(_) => {
                    return Err(Error::invalid("cursor", "was issued for the other order"));
                }
                None => return Err(Error::invalid("cursor", "is not a cursor of this list")),
            },
        };
        self.store
            .ticket_messages(&t.id, kinds, after, ascending, limit)
            .await
    }

    /// The cursor after the last message of a page.
    pub fn ticket_message_cursor(last: &TicketMessage, ascending: bool) -> String {
        Cursor {
            t: last.seq,
            id: if ascending { "asc" } else { "desc" }.into(),
        }
        .encode()
    }

    /// `createTicketMessage`: a person's reply. When the ticket has a live
    /// conversation, that conversation must be taken over, and the reply is also
    /// appended to it (authored) so the visitor sees it. A reply to a ticket that
    /// is new or on the team moves it to "on customer".
    /// A reply through the API by a workspace member, named by id or email.
    pub async fn member_reply(
        &self,
        workspace_id: &str,
        agent_id: &str,
        number: i64,
        content: &str,
        (author_id, author_email): (Option<&str>, Option<&str>),
    ) -> Result<TicketMessage> {
        let author = (self.ticket_author(workspace_id, author_id, author_email)).await?;
        (self.reply_to_ticket(workspace_id, agent_id, number, content, author)).await
    }

    pub async fn reply_to_ticket(
        &self,
        workspace_id: &str,
        agent_id: &str,
        number: i64,
        content: &str,
        author: Sender,
    ) -> Result<TicketMessage> {
        let mut t = self.ticket(workspace_id, agent_id, number).await?;
        let text = content.trim();
        if helpdesk::render_content(text).is_none() {
            return Err(Error::Rejected(Rejection::MessageContentNotRenderable));
        }
        let conversation = match &t.conversation_id {
            Some(id) => self.store.conversation(workspace_id, id).await?,
            None => None,
        };
        if let Some(c) = &conversation
            && c.status != ConversationStatus::TakenOver
        {
            return Err(Error::Rejected(Rejection::ConversationNotTakenOver));
        }
        let now = self.now();
        let reply = reply_message(&t.id, author.clone(), text, now);
        let conversation_reply = conversation.map(|c| {
            (
                Message {
                    id: ids::message_id(),
                    conversation_id: c.id,
                    seq: 0,
                    role: MessageRole::Assistant,
                    parts: vec![Part::Text {
                        text: text.to_owned(),
                    }],
                    created_at: now,
                    feedback: None,
                    score: None,
                    finish_reason: Some("stop".into()),
                    credits: 0.0,
                    sources: Vec::new(),
                    spam: false,
                },
                author,
            )
        });
        if matches!(t.status_category.as_str(), "new" | "on_you") {
            let (statuses, _) = self.helpdesk_setup(workspace_id, agent_id).await?;
            let s = Self::pick_status(&statuses, None, Some("on_customer"), "on_customer")?;
            t.status_id = s.id;
            t.status_category = s.category;
        }
        t.updated_at = now;
        t.last_message_at = Some(now);
        self.store
            .write_ticket(TicketWrite {
                ticket: t,
                new: false,
                messages: vec![reply.clone()],
                reply: conversation_reply,
                conversation_status: None,
                events: &|t| vec![helpdesk::ticket_updated(t)],
            })
            .await?;
        Ok(reply)
    }

    /// An operator takes a conversation of the agent over (dashboard or API).
    pub async fn take_over_conversation(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
    ) -> Result<Ticket> {
        let c = self
            .conversations
            .conversation_of(p, agent_id, conversation_id)
            .await?;
        self.handoffs
            .take_over(&p.workspace_id, &c, Handoff::Operator, None)
            .await
    }

    /// The visitor asks for a person (the widget's button).
    pub async fn visitor_handoff(
        &self,
        w: &WidgetAgent,
        visitor_id: &str,
        identity: Option<&crate::contacts::Identity>,
        conversation_id: &str,
    ) -> Result<Ticket> {
        self.widget
            .conversation_user(w, visitor_id, identity, conversation_id)
            .await?;
        let c = self
            .store
            .conversation(&w.principal.workspace_id, conversation_id)
            .await?
            .ok_or(Error::NotFound(Resource::Conversation))?;
        self.handoffs
            .take_over(&w.principal.workspace_id, &c, Handoff::Visitor, None)
            .await
    }

    /// A person's reply to a taken-over conversation (the dashboard): through its
    /// ticket, so thread and conversation both hold it.
    pub async fn reply_to_conversation(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
        text: &str,
        author: Sender,
    ) -> Result<TicketMessage> {
        let c = self
            .conversations
            .conversation_of(p, agent_id, conversation_id)
            .await?;
        if c.status != ConversationStatus::TakenOver {
            return Err(Error::Rejected(Rejection::ConversationNotTakenOver));
        }
        let t = self
            .store
            .conversation_ticket(&p.workspace_id, &c.id)
            .await?
            .ok_or(Error::Rejected(Rejection::ConversationNotTakenOver))?;
        self.reply_to_ticket(&p.workspace_id, agent_id, t.number, text, author)
            .await
    }

    /// Hands a taken-over conversation back to the AI. The ticket stays as it is
    /// (its status is the team's to set); its timeline records the hand-back.
    pub async fn hand_back(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
    ) -> Result<()> {
        let c = self
            .conversations
            .conversation_of(p, agent_id, conversation_id)
            .await?;
        if c.status != ConversationStatus::TakenOver {
            return Err(Error::Rejected(Rejection::ConversationNotTakenOver));
        }
        let now = self.now();
        match self
            .store
            .conversation_ticket(&p.workspace_id, &c.id)
            .await?
        {
            Some(mut t) => {
                let event = event_message(
                    &t,
                    now,
                    serde_json::json!({"eventType": "hand_back", "doneBy": null}),
                );
                t.updated_at = now;
                self.store
                    .write_ticket(TicketWrite {
                        ticket: t,
                        new: false,
                        messages: vec![event],
                        reply: None,
                        conversation_status: Some((c.id.clone(), ConversationStatus::Ongoing)),
                        events: &|t| vec![helpdesk::ticket_updated(t)],
                    })
                    .await?;
            }
            None => {
                self.store
                    .set_conversation_status(&c.id, ConversationStatus::Ongoing, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// Who wrote each person-written message of a conversation.
    pub async fn message_authors(&self, conversation_id: &str) -> Result<HashMap<String, Sender>> {
        Ok(self
            .store
            .message_authors(conversation_id)
            .await?
            .into_iter()
            .collect())
    }

    /// The conversation's messages after position `after` (oldest first, at most
    /// 50), waiting up to `wait` for one to appear; with the conversation's status
    /// at the end. The caller has checked that the conversation is theirs.
    pub async fn messages_after(
        &self,
        workspace_id: &str,
        conversation_id: &str,
        after: i64,
        wait: Duration,
    ) -> Result<(Vec<LiveMessage>, ConversationStatus)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let c = self
                .store
                .conversation(workspace_id, conversation_id)
                .await?
                .ok_or(Error::NotFound(Resource::Conversation))?;
            let fresh: Vec<Message> = self
                .store
                .recent_messages(&c.id, 50)
                .await?
                .into_iter()
                .filter(|m| m.seq > after)
                .collect();
            if !fresh.is_empty() || tokio::time::Instant::now() >= deadline {
                let authors = if fresh.is_empty() {
                    HashMap::new()
                } else {
                    self.message_authors(&c.id).await?
                };
                let out = fresh
                    .into_iter()
                    .map(|m| LiveMessage {
                        author: authors.get(&m.id).cloned(),
                        message: m,
                    })
                    .collect();
                return Ok((out, c.status));
            }
            tokio::time::sleep(LIVE_EVERY.min(deadline - tokio::time::Instant::now())).await;
        }
    }

    /// The widget's live poll: the visitor's own conversation only.
    pub async fn widget_messages_after(
        &self,
        w: &WidgetAgent,
        visitor_id: &str,
        identity: Option<&crate::contacts::Identity>,
        conversation_id: &str,
        after: i64,
        wait: Duration,
    ) -> Result<(Vec<LiveMessage>, ConversationStatus)> {
        self.widget
            .conversation_user(w, visitor_id, identity, conversation_id)
            .await?;
        self.messages_after(&w.principal.workspace_id, conversation_id, after, wait)
            .await
    }

    /// The dashboard's live poll of a conversation of the agent.
    pub async fn operator_messages_after(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
        after: i64,
        wait: Duration,
    ) -> Result<(Vec<LiveMessage>, ConversationStatus)> {
        let c = self
            .conversations
            .conversation_of(p, agent_id, conversation_id)
            .await?;
        self.messages_after(&p.workspace_id, &c.id, after, wait)
            .await
    }
}

/// The helpdesk steps a chat turn takes (a visitor's message to a taken-over
/// conversation joins its ticket; the model's escalation takes it over), and the
/// statuses and teams they need. The chat service and [`Helpdesk`] share it, so
/// neither has to call the other.
pub(crate) struct Handoffs {
    store: Store,
    clock: Arc<dyn Clock>,
    agents: Arc<Agents>,
}

impl Handoffs {
    pub(crate) fn new(store: Store, clock: Arc<dyn Clock>, agents: Arc<Agents>) -> Self {
        Handoffs {
            store,
            clock,
            agents,
        }
    }

    fn now(&self) -> Millis {
        self.clock.now_ms()
    }

    /// The agent's statuses and teams, written on first use.
    pub(crate) async fn helpdesk_setup(
        &self,
        workspace_id: &str,
        agent_id: &str,
    ) -> Result<(Vec<TicketStatus>, Vec<Team>)> {
        self.agents.get(workspace_id, agent_id).await?;
        let statuses = self.store.ticket_statuses(workspace_id, agent_id).await?;
        let teams = self.store.helpdesk_teams(workspace_id, agent_id).await?;
        if !statuses.is_empty() && !teams.is_empty() {
            return Ok((statuses, teams));
        }
        let defaults: Vec<TicketStatus> = DEFAULT_STATUSES
            .iter()
            .map(|(category, external, internal, color)| TicketStatus {
                id: ids::uuid_v4(),
                agent_id: agent_id.to_owned(),
                category: (*category).to_owned(),
                external_label: (*external).to_owned(),
                internal_label: (*internal).to_owned(),
                color: Some((*color).to_owned()),
                is_default: true,
                position: 0,
            })
            .collect();
        let team = Team {
            id: ids::uuid_v4(),
            agent_id: agent_id.to_owned(),
            name: DEFAULT_TEAM.to_owned(),
            is_default: true,
            member_count: 0,
            created_at: self.now(),
        };
        self.store
            .seed_helpdesk(workspace_id, &defaults, &team)
            .await?;
        Ok((
            self.store.ticket_statuses(workspace_id, agent_id).await?,
            self.store.helpdesk_teams(workspace_id, agent_id).await?,
        ))
    }

    /// Takes the conversation over: it becomes a ticket (its open one if it has
    /// one, else a new one) and `taken_over`. Taking over a taken-over
    /// conversation changes nothing; an ended one cannot be. The operator's and the
    /// visitor's handoffs and the model's escalation in a chat turn all come here.
    pub(crate) async fn take_over(
        &self,
        workspace_id: &str,
        conversation: &Conversation,
        how: Handoff,
        reason: Option<&str>,
    ) -> Result<Ticket> {
        let agent_id = conversation.agent_id.as_str();
        let existing = self
            .store
            .conversation_ticket(workspace_id, &conversation.id)
            .await?
            .filter(|t| !matches!(t.status_category.as_str(), "closed" | "cancelled"));
        match conversation.status {
            ConversationStatus::TakenOver => {
                if let Some(t) = existing {
                    return Ok(t);
                }
            }
            ConversationStatus::Ended => {
                return Err(Error::Rejected(Rejection::ConversationNotOngoing));
            }
            ConversationStatus::Ongoing | ConversationStatus::Paused => {}
        }
        let (statuses, _) = self.helpdesk_setup(workspace_id, agent_id).await?;
        let now = self.now();
        let conversation_id = conversation.id.clone();
        let mut handoff_event = serde_json::json!({
            "eventType": "handoff",
            "requestedBy": how.as_str(),
            "doneBy": null,
        });
        let mut metadata = serde_json::json!({ "requestedBy": how.as_str() });
        if let Some(reason) = reason {
            handoff_event["reason"] = reason.into();
            metadata["reason"] = reason.into();
        }
        let taken = move |t: &Ticket| helpdesk::taken_over(t, &conversation_id, how.as_str(), now);
        if let Some(mut t) = existing {
            let event = event_message(&t, now, handoff_event);
            t.updated_at = now;
            return self
                .store
                .write_ticket(TicketWrite {
                    ticket: t,
                    new: false,
                    messages: vec![event],
                    reply: None,
                    conversation_status: Some((
                        conversation.id.clone(),
                        ConversationStatus::TakenOver,
                    )),
                    events: &|t| vec![taken(t), helpdesk::ticket_updated(t)],
                })
                .await;
        }
        let messages = self.store.recent_messages(&conversation.id, 50).await?;
        let status = Helpdesk::pick_status(&statuses, None, Some("new"), "new")?;
        let t = new_handoff_ticket(workspace_id, conversation, &messages, status, metadata, now);
        let last_user = t.description.clone();
        let customer = t.customer.clone();
        let mut thread = vec![event_message(&t, now, handoff_event)];
        if let Some(text) = &last_user {
            thread.push(reply_message(&t.id, Sender::customer(&customer), text, now));
        }
        self.store
            .write_ticket(TicketWrite {
                ticket: t,
                new: true,
                messages: thread,
                reply: None,
                conversation_status: Some((conversation.id.clone(), ConversationStatus::TakenOver)),
                events: &|t| vec![helpdesk::ticket_created(t), taken(t)],
            })
            .await
    }

    /// A visitor's message to a taken-over conversation joins its ticket's thread
    /// (the conversation already holds it); a ticket waiting on the customer comes
    /// back to the team.
    pub(crate) async fn handoff_user_message(
        &self,
        workspace_id: &str,
        conversation: &Conversation,
        text: &str,
    ) -> Result<()> {
        let Some(mut t) = self
            .store
            .conversation_ticket(workspace_id, &conversation.id)
            .await?
        else {
            return Ok(());
        };
        let now = self.now();
        if t.status_category == "on_customer" {
            let (statuses, _) = self.helpdesk_setup(workspace_id, &t.agent_id).await?;
            let s = Helpdesk::pick_status(&statuses, None, Some("on_you"), "on_you")?;
            t.status_id = s.id;
            t.status_category = s.category;
        }
        t.updated_at = now;
        t.last_message_at = Some(now);
        let reply = reply_message(&t.id, Sender::customer(&t.customer), text, now);
        self.store
            .write_ticket(TicketWrite {
                ticket: t,
                new: false,
                messages: vec![reply],
                reply: None,
                conversation_status: None,
                events: &no_events,
            })
            .await?;
        Ok(())
    }
}

/// The ticket a taken-over conversation opens: its subject is the conversation's
/// title or the visitor's first message, its description the visitor's last.
fn new_handoff_ticket(
    workspace_id: &str,
    conversation: &Conversation,
    messages: &[Message],
    status: TicketStatus,
    metadata: serde_json::Value,
    now: agentbase_core::Millis,
) -> Ticket {
    let agent_id = conversation.agent_id.as_str();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role == MessageRole::User)
        .map(Message::text);
    let subject = conversation
        .title
        .clone()
        .or_else(|| {
            messages
                .iter()
                .find(|m| m.role == MessageRole::User)
                .map(Message::text)
        })
        .map(|s| s.chars().take(helpdesk::SUBJECT_MAX).collect::<String>())
        .filter(|s| !s.trim().is_empty());
    let customer_key = conversation
        .user_id
        .clone()
        .unwrap_or_else(|| conversation.id.clone());
    let customer = Customer {
        id: helpdesk::customer_id(agent_id, &customer_key),
        name: None,
        email: None,
        phone: None,
    };
    let last_message_at = last_user.as_ref().map(|_| now);
    Ticket {
        id: ids::uuid_v4(),
        workspace_id: workspace_id.to_owned(),
        agent_id: agent_id.to_owned(),
        number: 0,
        conversation_id: Some(conversation.id.clone()),
        subject,
        description: last_user,
        status_id: status.id,
        status_category: status.category,
        assignee_id: None,
        assignee_email: None,
        team_id: None,
        priority: "none".into(),
        channel: helpdesk::channel_of_source(&conversation.source).into(),
        customer,
        metadata,
        created_at: now,
        updated_at: now,
        last_message_at,
    }
}

/// Use cases of the public API that join two of the steps above.
impl Helpdesk {
    /// [`Helpdesk::hand_back`], then the conversation as it is now (for its status).
    pub async fn hand_back_status(
        &self,
        p: &Principal,
        agent_id: &str,
        conversation_id: &str,
    ) -> Result<Conversation> {
        self.hand_back(p, agent_id, conversation_id).await?;
        self.conversations
            .conversation_of(p, agent_id, conversation_id)
            .await
    }
}

/// What the dashboard's tickets page shows: the agent's teams, and its tickets.
#[derive(Debug, Clone)]
pub struct TicketsPage {
    pub teams: Vec<Team>,
    pub tickets: Vec<Ticket>,
}

impl Helpdesk {
    /// The agent's teams and its first `limit` tickets matching `filter` and, when
    /// given, assigned to `assignee_email` (case-insensitive; matched among those
    /// tickets, since the filter matches assignees by id).
    pub async fn tickets_page(
        &self,
        workspace_id: &str,
        agent_id: &str,
        filter: &TicketFilter,
        assignee_email: Option<&str>,
        limit: u32,
    ) -> Result<TicketsPage> {
        let teams = self.helpdesk_teams(workspace_id, agent_id).await?;
        let page = self
            .tickets(workspace_id, agent_id, filter, None, limit)
            .await?;
        let tickets = (page.items.into_iter())
            .filter(|t| {
                assignee_email.is_none_or(|email| {
                    (t.assignee_email.as_deref()).is_some_and(|e| e.eq_ignore_ascii_case(email))
                })
            })
            .collect();
        Ok(TicketsPage { teams, tickets })
    }
}
