//! The OpenAPI 3.1 document, generated from the handlers' annotations and the
//! wire types, served at `/api/v2/openapi.json`.

use agentbase_api_types as api;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{
    agents, apify, apify_webhooks, chat, contacts, conversations, helpdesk, leads, sources, system,
    v1, webhooks,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "agentbase API", description = "The Chatbase v2 API as served by agentbase."),
    paths(
        system::health, agents::list, agents::create, agents::get, agents::update, agents::delete, agents::get_actions, agents::put_actions,
        agents::update_styles, agents::clone, conversations::search,
        chat::chat, chat::retry, chat::tool_result, conversations::list, conversations::for_user,
        conversations::get, conversations::messages, conversations::update, conversations::feedback,
        conversations::export, v1::chat, v1::get_conversations, v1::create_chatbot,
        v1::update_chatbot_data, v1::get_chatbots, v1::delete_chatbot, v1::update_chatbot_settings,
        sources::create, sources::list, sources::summary, sources::get, sources::update, sources::delete,
        sources::restore, sources::train, sources::auto_retrain, sources::jobs, sources::search,
        apify::start, apify::get, apify::abort, apify::items, apify::actor, apify::dataset, apify::log,
        apify::kv_store, apify::kv_keys, apify::kv_record, apify::put_kv_record, apify::delete_kv_record,
        apify::delete_kv_store, apify::delete_dataset,
        apify::runs, apify::actor_runs, apify::run_sync_items, apify::run_sync, apify::me,
        apify::delete_run, apify::datasets, apify::kv_stores,
        apify_webhooks::list, apify_webhooks::create, apify_webhooks::get, apify_webhooks::update,
        apify_webhooks::delete, apify_webhooks::test, apify_webhooks::webhook_dispatches,
        apify_webhooks::dispatches, apify_webhooks::dispatch, apify_webhooks::actor_webhooks,
        webhooks::list, webhooks::create, webhooks::get, webhooks::update, webhooks::delete,
        webhooks::deliveries, v1::get_leads, leads::export,
        contacts::list, contacts::create, contacts::get, contacts::update, contacts::delete,
        contacts::attributes, contacts::create_attribute, contacts::update_attribute,
        contacts::identity_secret, contacts::rotate_identity_secret,
        helpdesk::statuses, helpdesk::teams, helpdesk::create, helpdesk::list, helpdesk::search,
        helpdesk::get, helpdesk::update, helpdesk::messages, helpdesk::reply, helpdesk::take_over,
        helpdesk::hand_back
    ),
    components(schemas(
        api::ErrorResponse, api::ErrorDetail, api::Pagination, api::Health, api::SuccessResponse,
        api::Agent, api::IpRateLimits, api::ListAgentsResponse, api::AgentCreated, api::CreateAgentBody,
        api::UpdateAgentBody, api::IpRateLimitsPatch, api::Visibility, api::ChatRequest, api::RetryRequest,
        api::ChatResponse, api::ChatMessage, api::ChatMetadata, api::Usage, api::MessagePart,
        api::ConversationMetadata, api::ConversationMessage, api::MessageMetadata, api::ListConversationsResponse,
        api::ConversationWithMessages, api::GetConversationResponse, api::ListMessagesResponse,
        api::UpdateConversationRequest, api::UpdateConversationResponse, api::ConversationStatus,
        api::FeedbackValue, api::UpdateFeedbackRequest, api::MessageResponse, api::SubmitToolResultRequest,
        api::SuccessData, api::ExportPart, api::ExportMessage, api::ExportConversation,
        api::ExportConversationsResponse, api::StreamMetadata, api::Action, api::ActionsBody,
        api::ActionsResponse, api::v1::V1Message,
        api::v1::V1ChatRequest, api::v1::V1ChatResponse, api::v1::V1Conversation,
        api::v1::V1ConversationsResponse, api::v1::V1Error, api::MessageSource,
        api::v1::V1CreateChatbot, api::v1::V1UpdateChatbotData, api::v1::V1ChatbotId,
        api::v1::V1UpdateChatbotSettings, api::v1::V1Chatbot, api::v1::V1Chatbots, api::v1::V1Message200,
        api::SourceListItem, api::LinkMetadata, api::LinkChildren, api::ListSourcesResponse,
        api::CreateSourceBody, api::UpdateSourceBody, api::SourceTypeCount, api::SourcesSummaryResponse,
        api::DeprecatedEndpointResponse, api::AutoRetrainBody, api::TrainingJob, api::TrainingJobsResponse,
        api::SearchBody, api::SearchHit, api::SearchPage, api::SearchResponse, api::UpdateStylesBody,
        api::ConversationSearchResult, api::SearchSnippet, api::SnippetHighlight, api::SearchPagination,
        api::SearchConversationsResponse, chat::StreamEvent, api::Webhook, api::WebhooksResponse,
        api::CreateWebhookBody, api::UpdateWebhookBody, api::WebhookAttempt, api::WebhookDelivery,
        api::WebhookDeliveriesResponse, api::v1::V1LeadsResponse, api::v1::V1Lead,
        api::v1::V1Issue, api::contacts::V1Contact, api::contacts::V1ContactsPages,
        api::contacts::V1ContactsResponse, api::contacts::V1ContactsCreated,
        api::contacts::V1ContactResponse, api::contacts::V1CreateContacts,
        api::contacts::V1UpdateContact, api::contacts::V1CustomAttribute,
        api::contacts::V1CustomAttributesResponse, api::contacts::V1CustomAttributeResponse,
        api::contacts::V1CreateCustomAttribute, api::contacts::V1UpdateCustomAttribute,
        api::contacts::IdentitySecret, api::contacts::IdentitySecretResponse,
        api::AnsweredBy, api::TicketStatus, api::TeamListItem, api::TicketCustomer, api::Ticket,
        api::TicketListItem, api::TicketPagination, api::ListTicketsResponse,
        api::TicketSearchPagination, api::SearchTicketsResponse, api::MessageSender,
        api::TicketThreadMessage, api::ListTicketMessagesResponse, api::CreatedTicketMessage,
        api::TicketCustomerBody, api::CreateTicketBody, api::UpdateTicketBody, api::SearchTicketsBody,
        api::CreateTicketMessageBody, api::TakeOverData, api::TakeOverResponse
    )),
    modifiers(&Bearer, &Authenticated)
)]
struct ApiDoc;

/// Every authenticated operation can answer 401 (no key, or a wrong one) and 429
/// (the key's rate limit), whatever its annotation lists: the authentication layer
/// answers before the handler runs. The Apify-compatible routes take the same key
/// (as a Bearer header or Apify's `token` query parameter), so they are marked as
/// authenticated here rather than in each annotation. v1 routes answer in v1's
/// error shape.
struct Authenticated;

impl Modify for Authenticated {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder, SecurityRequirement};
        for (path, item) in openapi.paths.paths.iter_mut() {
            let apify = path.starts_with("/v2/");
            let error = if path.starts_with("/api/v1/") {
                "V1Error"
            } else {
                "ErrorResponse"
            };
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                if apify && op.security.is_none() {
                    op.security = Some(vec![SecurityRequirement::new(
                        "bearer",
                        Vec::<String>::new(),
                    )]);
                }
                if op.security.is_none() {
                    continue;
                }
                for (status, description) in [
                    ("401", "The API key is missing or not valid"),
                    ("429", "The key's rate limit is reached"),
                ] {
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| {
                            ResponseBuilder::new()
                                .description(description)
                                .content(
                                    "application/json",
                                    ContentBuilder::new()
                                        .schema(Some(Ref::from_schema_name(error)))
                                        .build(),
                                )
                                .build()
                                .into()
                        });
                }
            }
        }
    }
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

pub fn document_json() -> Vec<u8> {
    serde_json::to_vec_pretty(&document()).unwrap_or_default()
}
