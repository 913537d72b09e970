//! Tickets and their threads on the wire.

use agentbase_api_types as api;
use agentbase_core::helpdesk::{self, Sender, Ticket, TicketMessage};
use agentbase_core::time_fmt::iso8601;
use agentbase_service::Page;
use agentbase_service::helpdesk::Helpdesk;

pub(crate) fn ticket_dto(t: Ticket) -> api::Ticket {
    api::Ticket {
        ticket_number: t.number,
        subject: t.subject,
        description: t.description,
        status_category: t.status_category,
        status_id: t.status_id,
        assignee_id: t.assignee_id,
        customer: customer_dto(&t.customer),
        metadata: t.metadata,
        channel: t.channel,
        conversation_id: t.conversation_id,
        team_id: t.team_id,
        priority: t.priority,
        created_at: iso8601(t.created_at),
        updated_at: iso8601(t.updated_at),
        last_message_at: t.last_message_at.map(iso8601),
    }
}

pub(crate) fn customer_dto(c: &helpdesk::Customer) -> api::TicketCustomer {
    api::TicketCustomer {
        id: c.id.clone(),
        name: c.name.clone(),
        email: c.email.clone(),
        phone_number: c.phone.clone(),
    }
}

pub(crate) fn list_item_dto(t: Ticket) -> api::TicketListItem {
    api::TicketListItem {
        ticket_number: t.number,
        subject: t.subject,
        status_category: t.status_category,
        status_id: t.status_id,
        assignee_id: t.assignee_id,
        customer: customer_dto(&t.customer),
        channel: t.channel,
        conversation_id: t.conversation_id,
        team_id: t.team_id,
        priority: t.priority,
        created_at: iso8601(t.created_at),
        updated_at: iso8601(t.updated_at),
        last_message_at: t.last_message_at.map(iso8601),
    }
}

pub(crate) fn sender_dto(s: Sender) -> api::MessageSender {
    api::MessageSender {
        kind: s.kind,
        id: s.id,
        name: s.name,
        email: s.email,
    }
}

pub(crate) fn thread_dto(m: TicketMessage) -> api::TicketThreadMessage {
    api::TicketThreadMessage {
        id: m.id,
        kind: m.kind,
        sender: m.sender.map(sender_dto),
        content: m.content,
        content_text: m.content_text,
        attachments: Vec::new(),
        created_at: iso8601(m.created_at),
        metadata: m.metadata,
    }
}

pub(crate) fn created_message_dto(m: TicketMessage) -> api::CreatedTicketMessage {
    let sender = m
        .sender
        .clone()
        .map(sender_dto)
        .unwrap_or(api::MessageSender {
            kind: "agent".into(),
            id: None,
            name: None,
            email: None,
        });
    api::CreatedTicketMessage {
        id: m.id,
        kind: m.kind,
        sender,
        content: m.content.unwrap_or_default(),
        content_text: m.content_text.unwrap_or_default(),
        created_at: iso8601(m.created_at),
    }
}

/// The domain form of a create body.
pub(crate) fn new_ticket(b: api::CreateTicketBody) -> helpdesk::NewTicketInput {
    let customer = b.customer.unwrap_or_default();
    helpdesk::NewTicketInput {
        subject: b.subject,
        description: b.description,
        customer_email: customer.email,
        customer_name: customer.name,
        status_id: b.status_id,
        status_category: b.status_category,
        assignee_id: b.assignee_id,
        assignee_email: b.assignee_email,
        team_id: b.team_id,
        priority: b.priority,
    }
}

/// The domain form of an update body.
pub(crate) fn ticket_patch(b: api::UpdateTicketBody) -> helpdesk::TicketPatch {
    helpdesk::TicketPatch {
        status_id: b.status_id,
        status_category: b.status_category,
        assignee_id: b.assignee_id,
        assignee_email: b.assignee_email,
        team_id: b.team_id,
        priority: b.priority,
    }
}

/// A page of the ticket list; its cursor carries the list's sort and order, and
/// `total` is there when it was asked for.
pub(crate) fn ticket_list_dto(
    page: Page<Ticket>,
    filter: &helpdesk::TicketFilter,
    include_total: bool,
) -> api::ListTicketsResponse {
    let cursor = (page.items.last())
        .filter(|_| page.has_more)
        .map(|t| Helpdesk::ticket_cursor(filter, t));
    api::ListTicketsResponse {
        pagination: api::TicketPagination {
            has_more: cursor.is_some(),
            cursor,
            total: include_total.then_some(page.total),
        },
        data: page.items.into_iter().map(list_item_dto).collect(),
    }
}

/// A page of a ticket's thread; its cursor carries the order.
pub(crate) fn thread_page_dto(
    page: Page<TicketMessage>,
    ascending: bool,
) -> api::ListTicketMessagesResponse {
    let cursor = (page.items.last())
        .filter(|_| page.has_more)
        .map(|m| Helpdesk::ticket_message_cursor(m, ascending));
    api::ListTicketMessagesResponse {
        pagination: api::Pagination {
            has_more: cursor.is_some(),
            cursor,
            total: page.total,
        },
        data: page.items.into_iter().map(thread_dto).collect(),
    }
}

/// Ticket search results: one page, never a cursor.
pub(crate) fn ticket_search_dto(
    (found, has_more): (Vec<Ticket>, bool),
) -> api::SearchTicketsResponse {
    api::SearchTicketsResponse {
        data: found.into_iter().map(list_item_dto).collect(),
        pagination: api::TicketSearchPagination {
            cursor: None,
            has_more,
        },
    }
}

pub(crate) fn status_dto(s: helpdesk::TicketStatus) -> api::TicketStatus {
    api::TicketStatus {
        id: s.id,
        category: s.category,
        external_label: s.external_label,
        internal_label: s.internal_label,
        color: s.color,
        is_default: s.is_default,
        position: s.position,
    }
}

pub(crate) fn team_dto(t: helpdesk::Team) -> api::TeamListItem {
    api::TeamListItem {
        id: t.id,
        name: t.name,
        is_default: t.is_default,
        member_count: t.member_count,
    }
}
