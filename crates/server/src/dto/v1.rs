//! The v1 API's wire shapes: leads, conversations and chatbots out; chat input,
//! sources and settings patches in.

use agentbase_api_types::v1;
use agentbase_core::conversation::{Conversation, Message};
use agentbase_core::lead::Lead;
use agentbase_core::time_fmt::iso8601;
use agentbase_service::chat::V1Input;

use crate::error::ApiError;

/// The chat's input: `chatbotId` (or `chatId`) is required.
pub(crate) fn v1_input(body: v1::V1ChatRequest) -> Result<V1Input, ApiError> {
    let agent_id = body
        .chatbot_id
        .or(body.chat_id)
        .ok_or_else(|| ApiError::invalid_field("chatbotId", "Required"))?;
    Ok(V1Input {
        agent_id,
        messages: (body.messages.into_iter())
            .map(|m| (m.role, m.content))
            .collect(),
        temperature: body.temperature,
        model: body.model,
        conversation_id: body.conversation_id,
    })
}

pub(crate) fn leads_dto(leads: Vec<Lead>) -> v1::V1LeadsResponse {
    v1::V1LeadsResponse {
        collected_customers: leads
            .into_iter()
            .map(|l| v1::V1Lead {
                id: l.id,
                name: l.name.unwrap_or_default(),
                email: l.email.unwrap_or_default(),
                phone: l.phone.unwrap_or_default(),
                created_at: iso8601(l.created_at),
                chatbot_id: l.agent_id,
                account_id: l.workspace_id,
                conversation_id: l.conversation_id,
            })
            .collect(),
    }
}

pub(crate) fn conversations_dto(
    list: Vec<(Conversation, Vec<Message>)>,
) -> v1::V1ConversationsResponse {
    v1::V1ConversationsResponse {
        data: list
            .into_iter()
            .map(|(c, messages)| v1_conversation(c, &messages))
            .collect(),
    }
}

fn v1_conversation(c: Conversation, messages: &[Message]) -> v1::V1Conversation {
    v1::V1Conversation {
        id: c.id,
        created_at: iso8601(c.created_at),
        messages: messages
            .iter()
            .map(|m| v1::V1Message {
                role: m.role.as_str().to_owned(),
                content: m.text(),
            })
            .collect(),
        chatbot_id: c.agent_id,
        customer: c.user_id,
        source: c.source,
    }
}

/// Sources for v1's `sourceText` and `urlsToScrape`.
pub(crate) fn v1_sources(
    source_text: Option<String>,
    urls: Option<Vec<String>>,
) -> Vec<agentbase_core::knowledge::NewSource> {
    use agentbase_core::knowledge::{LinkOptions, LinkType, NewSource, SourceContent};
    let mut out = Vec::new();
    if let Some(text) = source_text.filter(|t| !t.trim().is_empty()) {
        out.push(NewSource {
            name: "sourceText".into(),
            content: SourceContent::Text { content: text },
        });
    }
    for url in urls.unwrap_or_default() {
        out.push(NewSource {
            name: url.clone(),
            content: SourceContent::Link {
                url,
                options: LinkOptions {
                    link_type: LinkType::Individual,
                    exclude_paths: Vec::new(),
                    include_only_paths: Vec::new(),
                    slow_scraping: false,
                },
            },
        });
    }
    out
}

pub(crate) fn v1_chatbot(a: agentbase_core::Agent) -> v1::V1Chatbot {
    v1::V1Chatbot {
        id: a.id,
        name: a.name,
        instructions: a.instructions,
        model: a.model,
        temp: a.temp,
        visibility: a.visibility.as_str().to_owned(),
        initial_messages: a.initial_messages,
        suggested_messages: a.suggested_messages,
        allowed_domains: a.allowed_domains,
        status: a.status.as_str().to_owned(),
        created_at: iso8601(a.created_at),
        last_trained_at: a.last_trained_at.map(iso8601),
        size: a.size,
    }
}

/// What a v1 settings body asks for: the chatbot it names, the agent patch, and
/// the widget styles (v2's `styles.chat`, checked here).
pub(crate) struct SettingsUpdate {
    pub chatbot_id: String,
    pub patch: agentbase_core::AgentPatch,
    pub styles: Option<serde_json::Value>,
}

/// The update a v1 settings body asks for, in v2's terms:
/// - `styles` (`theme`, `buttonColor`, `displayName`, …) are v2's `styles.chat`
///   keys, each merged as `PUT /agents/{id}/styles` merges them;
/// - `suggestedMessages` are plain strings in v1, v2's `single` messages in order;
/// - `onlyAllowOnAddedDomains: false` lets the widget run on every site: the agent
///   keeps no domain list (v2 has no list that is kept but not enforced), whatever
///   `domains` says; `true` enforces `domains` when given.
pub(crate) fn settings_patch(
    body: v1::V1UpdateChatbotSettings,
) -> Result<SettingsUpdate, ApiError> {
    use agentbase_core::{AgentPatch, Visibility, agent::IpRateLimitsPatch};
    let visibility = match body.visibility.as_deref() {
        None => None,
        Some("public") => Some(Visibility::Public),
        Some("private") => Some(Visibility::Private),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "visibility",
                "must be public or private",
            ));
        }
    };
    let ip = (body.ip_limit.is_some()
        || body.ip_limit_timeframe.is_some()
        || body.ip_limit_message.is_some())
    .then(|| {
        Some(IpRateLimitsPatch {
            limit: body.ip_limit,
            timeframe_secs: body.ip_limit_timeframe,
            message: body.ip_limit_message.clone(),
        })
    });
    let lead_form = body
        .collect_customer_information
        .as_ref()
        .map(|v| {
            agentbase_core::lead::LeadForm::from_json(v, "collectCustomerInformation")
                .map(|f| f.to_json())
                .map_err(ApiError::invalid_body)
        })
        .transpose()?;
    let styles = body
        .styles
        .map(|chat| {
            let styles = serde_json::json!({ "chat": chat });
            let mut errors = agentbase_core::FieldErrors::new();
            agentbase_core::agent_settings::check_styles(&styles, &mut errors);
            if errors.is_empty() {
                return Ok(styles);
            }
            // Named as the v1 body names them.
            let errors = errors
                .into_iter()
                .map(|(k, v)| (k.replacen("styles.chat", "styles", 1), v))
                .collect();
            Err(ApiError::from(agentbase_core::Error::Invalid(errors)))
        })
        .transpose()?;
    let suggested = body.suggested_messages.map(|texts| {
        let singles: Vec<serde_json::Value> = texts
            .into_iter()
            .enumerate()
            .map(
                |(order, text)| serde_json::json!({"type": "single", "text": text, "order": order}),
            )
            .collect();
        Some(serde_json::Value::Array(singles))
    });
    let allowed_domains = match body.only_allow_on_added_domains {
        Some(false) => Some(None),
        _ => body.domains.map(Some),
    };
    let patch = AgentPatch {
        name: body.name,
        instructions: body.instructions,
        model: body.model,
        temp: body.temp,
        visibility,
        allowed_domains,
        suggested_messages: suggested,
        initial_messages: body.initial_messages,
        ip_rate_limits: ip,
        lead_form: lead_form.map(Some),
        ..Default::default()
    };
    Ok(SettingsUpdate {
        chatbot_id: body.chatbot_id,
        patch,
        styles,
    })
}
