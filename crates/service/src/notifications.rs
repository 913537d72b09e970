//! Daily summary mails (`notificationsSettings.dailyConversations`): after each
//! UTC day ends, every agent that asks for it gets a mail listing the day's new
//! conversations, sent through the configured SMTP server. The record's claim row
//! makes one node send each mail once; a failed send gives the claim back, so the
//! next check retries. (`dailyLeadsCollected` is stored and waits for leads.)

use std::sync::Arc;
use std::time::Duration;

use agentbase_core::agent_settings::notification_recipients;
use agentbase_core::time_fmt::iso8601;
use agentbase_core::{Agent, Error, Result};
use agentbase_store::ConversationFilter;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use agentbase_core::Clock;
use agentbase_store::Store;

use crate::settings::Settings;

const DAY_MS: i64 = 86_400_000;
pub const DAILY_CONVERSATIONS: &str = "dailyConversations";
/// Conversations listed in one mail (the count covers them all).
const LISTED: u32 = 50;

/// One day's summary for an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub subject: String,
    pub body: String,
}

/// Builds the SMTP transport from `notifications.smtp_url`.
fn transport(url: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let bad = |e: String| Error::Unavailable(format!("notifications.smtp_url: {e}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("no scheme".into()))?;
    let (auth, hostport) = match rest.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, rest),
    };
    let hostport = hostport.trim_end_matches('/');
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(p.parse::<u16>().map_err(|_| bad("bad port".into()))?),
        ),
        None => (hostport, None),
    };
    let mut builder = match scheme {
        "smtp" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        "smtps" => {
            AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| bad(e.to_string()))?
        }
        "smtp+starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(|e| bad(e.to_string()))?,
        other => return Err(bad(format!("unknown scheme {other}"))),
    };
    if let Some(port) = port {
        builder = builder.port(port);
    }
    if let Some(auth) = auth {
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        builder = builder.credentials(Credentials::new(user.to_owned(), password.to_owned()));
    }
    Ok(builder.timeout(Some(Duration::from_secs(30))).build())
}

/// The daily summary mails.
pub struct Notifier {
    store: Store,
    clock: Arc<dyn Clock>,
    settings: Arc<Settings>,
}

impl Notifier {
    pub(crate) fn new(store: Store, clock: Arc<dyn Clock>, settings: Arc<Settings>) -> Self {
        Notifier {
            store,
            clock,
            settings,
        }
    }

    fn now(&self) -> agentbase_core::Millis {
        self.clock.now_ms()
    }

    /// Runs the daily mail check every `notifications.check_interval_secs` while
    /// an SMTP server is configured.
    pub fn start(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.settings.notifications.smtp_url.is_empty() {
            return None;
        }
        let app = self.clone();
        let every = Duration::from_secs(self.settings.notifications.check_interval_secs);
        Some(tokio::spawn(async move {
            loop {
                match app.send_daily_summaries().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(mails = n, "daily summaries sent"),
                    Err(e) => tracing::warn!(error = %e, "daily summaries failed"),
                }
                tokio::time::sleep(every).await;
            }
        }))
    }

    /// Sends yesterday's (UTC) conversation summaries that are due and not yet
    /// sent by any node; returns how many mails went out.
    pub async fn send_daily_summaries(&self) -> Result<usize> {
        let url = &self.settings.notifications.smtp_url;
        if url.is_empty() {
            return Ok(0);
        }
        let transport = transport(url)?;
        let from: Mailbox = self
            .settings
            .notifications
            .from
            .parse()
            .map_err(|e| Error::Unavailable(format!("notifications.from: {e}")))?;
        let day = self.now().div_euclid(DAY_MS) - 1;
        let mut sent = 0;
        for agent in self.store.agents_with_notifications().await? {
            let Some(settings) = &agent.notifications else {
                continue;
            };
            let to = notification_recipients(settings, DAILY_CONVERSATIONS);
            if to.is_empty() {
                continue;
            }
            let Some(summary) = self.conversation_summary(&agent, day).await? else {
                continue;
            };
            if !self
                .store
                .claim_notification(&agent.id, DAILY_CONVERSATIONS, day, self.now())
                .await?
            {
                continue;
            }
            let mut builder = Message::builder()
                .from(from.clone())
                .subject(&summary.subject)
                .header(ContentType::TEXT_PLAIN);
            for address in &to {
                match address.parse::<Mailbox>() {
                    Ok(m) => builder = builder.to(m),
                    Err(e) => {
                        tracing::warn!(agent = %agent.id, address, error = %e, "skipping a recipient")
                    }
                }
            }
            let result = match builder.body(summary.body) {
                Ok(mail) => transport
                    .send(mail)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::warn!(agent = %agent.id, error = %e, "daily summary not sent; will retry");
                    self.store
                        .release_notification(&agent.id, DAILY_CONVERSATIONS, day)
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    /// The summary of the conversations the agent began on UTC day `day`; `None`
    /// when there were none (no mail is sent for a quiet day).
    pub async fn conversation_summary(&self, agent: &Agent, day: i64) -> Result<Option<Summary>> {
        let start = day * DAY_MS;
        let filter = ConversationFilter {
            created_from: Some(start),
            created_to: Some(start + DAY_MS - 1),
            ..Default::default()
        };
        let page = self
            .store
            .conversations(&agent.id, &filter, None, LISTED, false)
            .await?;
        if page.total == 0 {
            return Ok(None);
        }
        let date = &iso8601(start)[..10];
        let mut body = format!(
            "Daily summary for {} on {date} (UTC)\n\nNew conversations: {}\n\n",
            agent.name, page.total
        );
        for c in &page.items {
            let messages = self.store.messages(&c.id).await?;
            let spam = messages.iter().filter(|m| m.spam).count();
            body.push_str(&format!(
                "- {} | {} | {} messages{} | {}\n",
                iso8601(c.created_at),
                c.title.as_deref().unwrap_or("(untitled)"),
                messages.len(),
                if spam > 0 {
                    format!(", {spam} flagged as spam")
                } else {
                    String::new()
                },
                c.source,
            ));
        }
        if page.total > i64::from(LISTED) {
            body.push_str(&format!("… and {} more\n", page.total - i64::from(LISTED)));
        }
        Ok(Some(Summary {
            subject: format!("{}: {} new conversations on {date}", agent.name, page.total),
            body,
        }))
    }
}
