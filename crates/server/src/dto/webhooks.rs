//! Webhooks and their deliveries on the wire.

use agentbase_api_types as api;
use agentbase_core::Cursor;
use agentbase_core::time_fmt::iso8601;
use agentbase_core::webhook::{Webhook, WebhookInput};
use agentbase_service::Page;
use agentbase_service::webhooks::DeliveryLog;

use crate::dto::conversations::pagination;

pub(crate) fn to_dto(w: Webhook) -> api::Webhook {
    api::Webhook {
        id: w.id,
        agent_id: w.agent_id,
        url: w.url,
        events: w.events,
        active: w.active,
        secret: w.secret,
        created_at: iso8601(w.created_at),
        updated_at: iso8601(w.updated_at),
    }
}

pub(crate) fn delivery_dto(l: DeliveryLog) -> api::WebhookDelivery {
    let d = l.delivery;
    let pending = d.state == agentbase_core::webhook::DeliveryState::Pending;
    api::WebhookDelivery {
        id: d.id,
        event_id: d.event_id,
        event_type: d.event_type,
        state: d.state.as_str().to_owned(),
        attempts: d.attempts,
        next_attempt_at: pending.then(|| iso8601(d.next_attempt_at)),
        created_at: iso8601(d.created_at),
        finished_at: d.finished_at.map(iso8601),
        body: d.body,
        log: l
            .attempts
            .into_iter()
            .map(|a| api::WebhookAttempt {
                attempt: a.attempt,
                started_at: iso8601(a.started_at),
                duration_ms: a.duration_ms,
                status_code: a.status_code,
                error: a.error,
            })
            .collect(),
    }
}

pub(crate) fn deliveries_dto(page: Page<DeliveryLog>) -> api::WebhookDeliveriesResponse {
    let pagination = pagination(&page, |l| Cursor {
        t: l.delivery.created_at,
        id: l.delivery.id.clone(),
    });
    api::WebhookDeliveriesResponse {
        data: page.items.into_iter().map(delivery_dto).collect(),
        pagination,
    }
}

/// The domain form of a create body.
pub(crate) fn new_webhook(body: api::CreateWebhookBody) -> WebhookInput {
    WebhookInput {
        url: Some(body.url),
        events: Some(body.events),
        active: body.active,
    }
}

/// The domain form of an update body, and whether to rotate the secret.
pub(crate) fn webhook_patch(body: api::UpdateWebhookBody) -> (WebhookInput, bool) {
    let input = WebhookInput {
        url: body.url,
        events: body.events,
        active: body.active,
    };
    (input, body.rotate_secret.unwrap_or(false))
}
