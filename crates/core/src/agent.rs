//! Agents (Chatbase "chatbots"): their settings, and the rules for creating and
//! changing them. Validation collects every problem, keyed by the wire field name,
//! so a client gets one 400 listing them all.

use serde_json::Value;

use crate::agent_settings::{self, SpamSettings};
use crate::{FieldErrors, Millis};

pub const NAME_MAX: usize = 100;
pub const INSTRUCTIONS_MAX: usize = 32_000;
pub const DEFAULT_INSTRUCTIONS: &str = "You are a helpful assistant. Answer from the provided context; \
if the answer is not in the context, say that you do not know.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

/// Training state derived from the agent's sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentStatus {
    Untrained,
    Training,
    Trained,
    Failed,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Untrained => "untrained",
            AgentStatus::Training => "training",
            AgentStatus::Trained => "trained",
            AgentStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "untrained" => Some(AgentStatus::Untrained),
            "training" => Some(AgentStatus::Training),
            "trained" => Some(AgentStatus::Trained),
            "failed" => Some(AgentStatus::Failed),
            _ => None,
        }
    }
}

/// Per-visitor limits for the public widget (Chatbase `ipRateLimits`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRateLimits {
    pub limit: u32,
    pub timeframe_secs: u32,
    pub message: String,
}

impl Default for IpRateLimits {
    fn default() -> Self {
        Self {
            limit: 20,
            timeframe_secs: 240,
            message: "Too many messages in a row".into(),
        }
    }
}

/// A client action (Chatbase Custom Action): a tool the model may call, run by the
/// client, whose result comes back through `tool-result`.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments: an object schema.
    pub parameters: Value,
}

pub const ACTIONS_MAX: usize = 64;
/// An action's parameter schema, as JSON: it goes into the prompt of every turn of
/// the agent, so one schema of megabytes would make every turn a long one.
pub const ACTION_PARAMETERS_MAX_BYTES: usize = 16 * 1024;

/// The built-in action that lets the model hand a conversation to a person. An
/// agent whose actions include one of this name has its calls resolved by the
/// server (the conversation becomes a ticket and is taken over), never sent to the
/// client; its `reason` argument, if any, is kept on the ticket.
pub const ESCALATION_ACTION: &str = "escalate_to_human";

impl Action {
    /// The built-in escalation action as the dashboard adds it.
    pub fn escalation() -> Action {
        Action {
            name: ESCALATION_ACTION.into(),
            description: "Hand the conversation to a person on the team when the user asks \
                          for a human, or when you cannot help and a person could."
                .into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "description": "Why a person is needed, in one sentence."}
                }
            }),
        }
    }
}

/// Checks a full list of actions, naming each bad field.
pub fn validate_actions(actions: &[Action]) -> Result<(), FieldErrors> {
    let mut errors = FieldErrors::new();
    if actions.len() > ACTIONS_MAX {
        errors.insert("actions".into(), format!("at most {ACTIONS_MAX} actions"));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, a) in actions.iter().enumerate() {
        let ok_name = (1..=64).contains(&a.name.len())
            && a.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok_name {
            errors.insert(
                format!("actions[{i}].name"),
                "must be 1–64 characters of a-z, A-Z, 0-9, '_' or '-'".into(),
            );
        } else if !seen.insert(a.name.as_str()) {
            errors.insert(
                format!("actions[{i}].name"),
                format!("duplicate action `{}`", a.name),
            );
        }
        if a.description.chars().count() > 1024 {
            errors.insert(
                format!("actions[{i}].description"),
                "must be at most 1024 characters".into(),
            );
        }
        let object_schema = a
            .parameters
            .as_object()
            .is_some_and(|o| o.get("type").and_then(Value::as_str) == Some("object"));
        if !object_schema {
            errors.insert(
                format!("actions[{i}].parameters"),
                "must be a JSON Schema with \"type\": \"object\"".into(),
            );
        } else if a.parameters.to_string().len() > ACTION_PARAMETERS_MAX_BYTES {
            errors.insert(
                format!("actions[{i}].parameters"),
                format!("must be at most {ACTION_PARAMETERS_MAX_BYTES} bytes of JSON"),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub instructions: String,
    pub model: String,
    pub temp: f64,
    pub visibility: Visibility,
    pub auto_retrain: bool,
    pub allowed_domains: Option<Vec<String>>,
    pub suggested_messages: Option<Value>,
    pub initial_messages: Vec<String>,
    pub credit_limit: Option<i64>,
    pub ip_rate_limits: IpRateLimits,
    pub actions: Vec<Action>,
    /// Channel → instructions used instead of `instructions` there (the contract's
    /// `channelInstructions` object).
    pub channel_instructions: Option<Value>,
    /// Daily summary mails (the contract's `notificationsSettings` object).
    pub notifications: Option<Value>,
    pub spam: Option<SpamSettings>,
    /// Stored and returned only: agentbase has no voice mode.
    pub voice: Option<Value>,
    pub blocked_countries: Option<Vec<String>>,
    /// The widget's look (the contract's `styles`: `{chat, centerStage}`).
    pub styles: Option<Value>,
    /// The lead form (v1's `collectCustomerInformation`, checked by
    /// [`crate::lead::LeadForm`]), as its JSON.
    pub lead_form: Option<Value>,
    /// Start (Unix ms) of the month `credits_used` counts; maintained by the store
    /// when answers are charged.
    pub credits_month: Millis,
    pub credits_used: f64,
    pub status: AgentStatus,
    /// Bytes of training data.
    pub size: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_trained_at: Option<Millis>,
    pub last_message_at: Option<Millis>,
    /// The knowledge version: bumped each time trained knowledge changes.
    pub kb_version: i64,
    /// When auto-retrain next runs (when on).
    pub next_retrain_at: Option<Millis>,
    /// Quote the best passage with its citation when the answer does not use it,
    /// and say "I don't know" without the model when nothing relevant is found.
    /// `None`: automatic, on for models under 1B parameters.
    pub quote_fallback: Option<bool>,
}

/// What a client may give when creating an agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewAgent {
    pub name: String,
    pub instructions: Option<String>,
    pub model: Option<String>,
    pub temp: Option<f64>,
    pub visibility: Option<Visibility>,
}

/// A partial update of the ip limits: absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRateLimitsPatch {
    pub limit: Option<u32>,
    pub timeframe_secs: Option<u32>,
    pub message: Option<String>,
}

/// A partial update. `None` leaves a field alone; for nullable fields `Some(None)`
/// clears it (the contract's `null`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub instructions: Option<String>,
    pub model: Option<String>,
    pub temp: Option<f64>,
    pub visibility: Option<Visibility>,
    pub allowed_domains: Option<Option<Vec<String>>>,
    pub suggested_messages: Option<Option<Value>>,
    pub initial_messages: Option<Vec<String>>,
    pub credit_limit: Option<Option<i64>>,
    pub ip_rate_limits: Option<Option<IpRateLimitsPatch>>,
    pub auto_retrain: Option<bool>,
    pub quote_fallback: Option<Option<bool>>,
    pub channel_instructions: Option<Option<Value>>,
    pub notifications: Option<Option<Value>>,
    /// Checked JSON; becomes [`SpamSettings`] when applied.
    pub spam: Option<Option<Value>>,
    pub voice: Option<Option<Value>>,
    pub blocked_countries: Option<Option<Vec<String>>>,
    /// A checked lead form's JSON ([`crate::lead::LeadForm::to_json`]).
    pub lead_form: Option<Option<Value>>,
}

/// Bounds on the lists an agent shows every visitor (agentbase's: the contract sets
/// none, and each is returned by every read of the agent and by the widget's
/// config).
pub const INITIAL_MESSAGES_MAX: usize = 20;
pub const SUGGESTED_MESSAGES_MAX: usize = 50;
pub const ALLOWED_DOMAINS_MAX: usize = 100;
/// Characters in one initial or suggested message, and in the rate limit's message.
pub const SHOWN_TEXT_MAX: usize = 2_000;
/// A host name's longest form (RFC 1035).
pub const DOMAIN_MAX: usize = 253;

fn check_name(name: &str, errors: &mut FieldErrors) {
    let len = name.trim().chars().count();
    if len == 0 {
        errors.insert("name".into(), "must not be empty".into());
    } else if name.chars().any(char::is_control) {
        errors.insert("name".into(), "must not contain control characters".into());
    } else if name.chars().count() > NAME_MAX {
        errors.insert(
            "name".into(),
            format!("must be at most {NAME_MAX} characters"),
        );
    }
}

fn check_temp(temp: f64, errors: &mut FieldErrors) {
    if !(0.0..=1.0).contains(&temp) {
        errors.insert("temp".into(), "must be between 0 and 1".into());
    }
}

fn check_model(model: &str, known: &dyn Fn(&str) -> bool, errors: &mut FieldErrors) {
    if !known(model) {
        errors.insert(
            "model".into(),
            format!("unknown model `{model}`: not configured on this server"),
        );
    }
}

fn check_instructions(text: &str, errors: &mut FieldErrors) {
    if text.chars().count() > INSTRUCTIONS_MAX {
        errors.insert(
            "instructions".into(),
            format!("must be at most {INSTRUCTIONS_MAX} characters"),
        );
    }
}

impl NewAgent {
    pub fn validate(&self, known_model: &dyn Fn(&str) -> bool) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        check_name(&self.name, &mut errors);
        if let Some(i) = &self.instructions {
            check_instructions(i, &mut errors);
        }
        if let Some(m) = &self.model {
            check_model(m, known_model, &mut errors);
        }
        if let Some(t) = self.temp {
            check_temp(t, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

fn check_initial_messages(messages: &[String], errors: &mut FieldErrors) {
    if messages.len() > INITIAL_MESSAGES_MAX {
        errors.insert(
            "initialMessages".into(),
            format!("at most {INITIAL_MESSAGES_MAX} messages"),
        );
    }
    for (i, m) in messages.iter().enumerate() {
        if m.trim().is_empty() || m.chars().count() > SHOWN_TEXT_MAX {
            errors.insert(
                format!("initialMessages[{i}]"),
                format!("1 to {SHOWN_TEXT_MAX} characters"),
            );
        }
    }
}

pub(crate) fn check_suggested_messages(value: &Value, errors: &mut FieldErrors) {
    let Some(items) = value.as_array() else {
        errors.insert(
            "suggestedMessages".into(),
            "must be an array or null".into(),
        );
        return;
    };
    if items.len() > SUGGESTED_MESSAGES_MAX {
        errors.insert(
            "suggestedMessages".into(),
            format!("at most {SUGGESTED_MESSAGES_MAX} messages"),
        );
        return;
    }
    for (i, item) in items.iter().enumerate() {
        let field = format!("suggestedMessages[{i}]");
        let non_empty = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty() && s.chars().count() <= SHOWN_TEXT_MAX)
        };
        let ok = match item.get("type").and_then(Value::as_str) {
            Some("single") => non_empty("text") && item.get("order").is_some_and(Value::is_number),
            Some("nested") => {
                non_empty("name")
                    && item.get("order").is_some_and(Value::is_number)
                    && item
                        .get("items")
                        .and_then(Value::as_array)
                        .is_some_and(|xs| {
                            (1..=20).contains(&xs.len())
                                && xs.iter().all(|x| {
                                    x.get("text").and_then(Value::as_str).is_some_and(|s| {
                                        !s.is_empty() && s.chars().count() <= SHOWN_TEXT_MAX
                                    }) && x.get("order").is_some_and(Value::is_number)
                                })
                        })
            }
            _ => false,
        };
        if !ok {
            errors.insert(
                field,
                format!(
                    "must be {{type:\"single\",text,order}} or {{type:\"nested\",name,order,items[1..20]}}, \
                     each text of 1 to {SHOWN_TEXT_MAX} characters"
                ),
            );
        }
    }
}

impl AgentPatch {
    pub fn validate(&self, known_model: &dyn Fn(&str) -> bool) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        if let Some(n) = &self.name {
            check_name(n, &mut errors);
        }
        if let Some(i) = &self.instructions {
            check_instructions(i, &mut errors);
        }
        if let Some(m) = &self.model {
            check_model(m, known_model, &mut errors);
        }
        if let Some(t) = self.temp {
            check_temp(t, &mut errors);
        }
        if let Some(Some(domains)) = &self.allowed_domains {
            if domains.len() > ALLOWED_DOMAINS_MAX {
                errors.insert(
                    "allowedDomains".into(),
                    format!("at most {ALLOWED_DOMAINS_MAX} domains"),
                );
            } else if domains.iter().any(|d| {
                d.trim().is_empty()
                    || d.len() > DOMAIN_MAX
                    || d.contains(|c: char| c.is_whitespace() || c.is_control())
            }) {
                errors.insert(
                    "allowedDomains".into(),
                    format!(
                        "domains must be non-empty host names of at most {DOMAIN_MAX} characters"
                    ),
                );
            }
        }
        if let Some(messages) = &self.initial_messages {
            check_initial_messages(messages, &mut errors);
        }
        if let Some(Some(s)) = &self.suggested_messages {
            check_suggested_messages(s, &mut errors);
        }
        if let Some(Some(limit)) = self.credit_limit
            && limit < 0
        {
            errors.insert("creditLimit".into(), "must be zero or more".into());
        }
        if let Some(Some(ip)) = &self.ip_rate_limits {
            if ip.limit.is_some_and(|l| !(1..=200).contains(&l)) {
                errors.insert(
                    "ipRateLimits.limit".into(),
                    "must be between 1 and 200".into(),
                );
            }
            if ip.timeframe_secs.is_some_and(|t| !(1..=3600).contains(&t)) {
                errors.insert(
                    "ipRateLimits.timeframe".into(),
                    "must be between 1 and 3600".into(),
                );
            }
            if ip
                .message
                .as_ref()
                .is_some_and(|m| m.chars().count() > SHOWN_TEXT_MAX)
            {
                errors.insert(
                    "ipRateLimits.message".into(),
                    format!("at most {SHOWN_TEXT_MAX} characters"),
                );
            }
        }
        if let Some(Some(v)) = &self.channel_instructions {
            agent_settings::check_channel_instructions(v, &mut errors);
        }
        if let Some(Some(v)) = &self.notifications {
            agent_settings::check_notifications(v, &mut errors);
        }
        if let Some(Some(v)) = &self.spam {
            agent_settings::check_spam(v, &mut errors);
        }
        if let Some(Some(v)) = &self.voice {
            agent_settings::check_voice(v, &mut errors);
        }
        if let Some(Some(list)) = &self.blocked_countries {
            agent_settings::check_blocked_countries(list, &mut errors);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

impl Agent {
    /// The instructions for a conversation from `channel` (a `channelInstructions`
    /// key): that channel's chat instructions when set, else `instructions`.
    pub fn instructions_for(&self, channel: Option<&str>) -> &str {
        channel
            .zip(self.channel_instructions.as_ref())
            .and_then(|(c, v)| agent_settings::channel_chat_instructions(v, c))
            .unwrap_or(&self.instructions)
    }

    /// Whether spam detection runs on this agent's incoming messages.
    pub fn spam_check(&self) -> Option<&SpamSettings> {
        self.spam.as_ref().filter(|s| s.enabled)
    }

    /// Credits spent in the month starting at `month_start` (zero if the counter is
    /// from an earlier month).
    pub fn credits_used_in(&self, month_start: Millis) -> f64 {
        if self.credits_month == month_start {
            self.credits_used
        } else {
            0.0
        }
    }

    /// Applies a validated patch.
    pub fn apply(&mut self, patch: AgentPatch, now: Millis) {
        let AgentPatch {
            name,
            instructions,
            model,
            temp,
            visibility,
            allowed_domains,
            suggested_messages,
            initial_messages,
            credit_limit,
            ip_rate_limits,
            auto_retrain,
            quote_fallback,
            channel_instructions,
            notifications,
            spam,
            voice,
            blocked_countries,
            lead_form,
        } = patch;
        if let Some(v) = lead_form {
            self.lead_form = v;
        }
        if let Some(v) = name {
            self.name = v.trim().to_owned();
        }
        if let Some(v) = instructions {
            self.instructions = v;
        }
        if let Some(v) = model {
            self.model = v;
        }
        if let Some(v) = temp {
            self.temp = v;
        }
        if let Some(v) = visibility {
            self.visibility = v;
        }
        if let Some(v) = allowed_domains {
            self.allowed_domains = v;
        }
        if let Some(v) = suggested_messages {
            self.suggested_messages = v;
        }
        if let Some(v) = initial_messages {
            self.initial_messages = v;
        }
        if let Some(v) = credit_limit {
            self.credit_limit = v;
        }
        match ip_rate_limits {
            None => {}
            Some(None) => self.ip_rate_limits = IpRateLimits::default(),
            Some(Some(p)) => {
                if let Some(l) = p.limit {
                    self.ip_rate_limits.limit = l;
                }
                if let Some(t) = p.timeframe_secs {
                    self.ip_rate_limits.timeframe_secs = t;
                }
                if let Some(m) = p.message {
                    self.ip_rate_limits.message = m;
                }
            }
        }
        if let Some(v) = auto_retrain {
            self.auto_retrain = v;
        }
        if let Some(v) = channel_instructions {
            self.channel_instructions = v;
        }
        if let Some(v) = notifications {
            self.notifications = v;
        }
        if let Some(v) = spam {
            self.spam = v.and_then(|v| agent_settings::check_spam(&v, &mut FieldErrors::new()));
        }
        if let Some(v) = voice {
            self.voice = v;
        }
        if let Some(v) = blocked_countries {
            self.blocked_countries = v;
        }
        if let Some(v) = quote_fallback {
            self.quote_fallback = v;
        }
        self.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_model(_: &str) -> bool {
        true
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let patch = AgentPatch {
            name: Some("  ".into()),
            temp: Some(1.5),
            model: Some("gpt-9".into()),
            credit_limit: Some(Some(-1)),
            ip_rate_limits: Some(Some(IpRateLimitsPatch {
                limit: Some(0),
                ..Default::default()
            })),
            suggested_messages: Some(Some(serde_json::json!([{"type": "single"}]))),
            ..Default::default()
        };
        let errors = patch.validate(&|m| m == "gpt-4o").unwrap_err();
        let keys: Vec<_> = errors.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "creditLimit",
                "ipRateLimits.limit",
                "model",
                "name",
                "suggestedMessages[0]",
                "temp"
            ]
        );
    }

    #[test]
    fn null_clears_and_partial_ip_limits_merge() {
        let mut agent = Agent {
            id: "a".into(),
            workspace_id: "w".into(),
            name: "n".into(),
            instructions: String::new(),
            model: "m".into(),
            temp: 0.0,
            visibility: Visibility::Private,
            auto_retrain: false,
            allowed_domains: Some(vec!["x.com".into()]),
            suggested_messages: None,
            initial_messages: vec![],
            credit_limit: Some(5),
            ip_rate_limits: IpRateLimits::default(),
            actions: Vec::new(),
            channel_instructions: None,
            notifications: None,
            spam: None,
            voice: None,
            blocked_countries: None,
            styles: None,
            lead_form: None,
            credits_month: 0,
            credits_used: 0.0,
            status: AgentStatus::Untrained,
            size: 0,
            created_at: 0,
            updated_at: 0,
            last_trained_at: None,
            last_message_at: None,
            kb_version: 0,
            next_retrain_at: None,
            quote_fallback: None,
        };
        let patch = AgentPatch {
            allowed_domains: Some(None),
            credit_limit: Some(None),
            ip_rate_limits: Some(Some(IpRateLimitsPatch {
                limit: Some(7),
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(patch.validate(&any_model).is_ok());
        agent.apply(patch, 9);
        assert_eq!(agent.allowed_domains, None);
        assert_eq!(agent.credit_limit, None);
        assert_eq!(agent.ip_rate_limits.limit, 7);
        assert_eq!(agent.ip_rate_limits.timeframe_secs, 240);
        assert_eq!(agent.updated_at, 9);
    }
}
