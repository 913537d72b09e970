//! Contacts, their custom attributes and the identity secret on the wire.

use agentbase_api_types::contacts as wire;
use agentbase_core::contact::{Contact, CustomAttribute};
use agentbase_core::time_fmt::iso8601;
use axum::Json;

/// The `message` of every successful contacts answer.
pub(crate) const SUCCESS: &str = "Success";

pub(crate) fn contacts_dto(
    result: agentbase_service::contacts::ContactsPage,
) -> wire::V1ContactsResponse {
    let pages = wire::V1ContactsPages {
        page: result.page,
        per_page: result.per_page,
        total_pages: result.total_pages(),
    };
    wire::V1ContactsResponse {
        message: SUCCESS.into(),
        total: result.total,
        data: result.contacts.into_iter().map(contact).collect(),
        pages,
    }
}

pub(crate) fn contact(c: Contact) -> wire::V1Contact {
    wire::V1Contact {
        id: c.id,
        external_id: c.external_id,
        name: c.name,
        email: c.email,
        phonenumber: c.phonenumber,
        stripe_accounts: c.stripe_accounts,
        custom_attributes: c.custom_attributes,
        created_at: c.created_at.div_euclid(1000),
        updated_at: c.updated_at.div_euclid(1000),
    }
}

pub(crate) fn attribute(a: CustomAttribute) -> wire::V1CustomAttribute {
    wire::V1CustomAttribute {
        name: a.name,
        label: a.label,
        kind: a.kind.as_str().to_owned(),
        description: a.description,
        archived: a.archived,
    }
}

pub(crate) fn secret(s: (String, i64)) -> Json<wire::IdentitySecretResponse> {
    Json(wire::IdentitySecretResponse {
        data: wire::IdentitySecret {
            secret: s.0,
            created_at: iso8601(s.1),
        },
    })
}
