//! Contacts (Chatbase v1's per-agent people: `external_id`, name, email, phone,
//! Stripe accounts, custom attributes), the agent's custom-attribute schema, the
//! checks both go through, identity verification's user hash, and the contact
//! placeholders an agent's instructions may use.
//!
//! Inputs arrive as JSON values rather than typed structs because what is valid
//! depends on the agent's schema (which keys exist, their types, which are
//! archived), and Chatbase strips unknown keys instead of refusing them.

use std::collections::BTreeSet;

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};

use crate::{FieldErrors, Millis, ids};

/// Contacts one bulk create may carry (Chatbase: "max 1000 per request").
pub const BULK_MAX: usize = 1000;
/// Contacts one agent may hold ("maximum contacts limit reached" past it).
pub const PER_AGENT_MAX: i64 = 100_000;
/// Custom attributes one agent's schema may hold.
pub const ATTRIBUTES_MAX: i64 = 100;
pub const EXTERNAL_ID_MAX: usize = 256;
pub const NAME_MAX: usize = 256;
pub const PHONE_MAX: usize = 32;
/// The longest `text` attribute value.
pub const TEXT_VALUE_MAX: usize = 2000;
pub const STRIPE_ACCOUNTS_MAX: usize = 20;
pub const STRIPE_FIELD_MAX: usize = 256;
pub const ATTRIBUTE_NAME_MAX: usize = 64;
pub const LABEL_MAX: usize = 256;
pub const DESCRIPTION_MAX: usize = 1000;
/// Identity verification's `user_metadata`: at most this many characters in all,
/// the rest cut off (as Chatbase does).
pub const METADATA_MAX_CHARS: usize = 1000;

/// Names a custom attribute may not take: the contact's own fields (placeholders
/// and API objects would be ambiguous otherwise).
pub const RESERVED_NAMES: [&str; 11] = [
    "id",
    "external_id",
    "user_id",
    "name",
    "email",
    "phonenumber",
    "phone",
    "stripe_accounts",
    "custom_attributes",
    "created_at",
    "updated_at",
];

/// A custom attribute's value type; fixed once the attribute exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeType {
    Text,
    Number,
    Boolean,
    Date,
}

impl AttributeType {
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::Text => "text",
            AttributeType::Number => "number",
            AttributeType::Boolean => "boolean",
            AttributeType::Date => "date",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => AttributeType::Text,
            "number" => AttributeType::Number,
            "boolean" => AttributeType::Boolean,
            "date" => AttributeType::Date,
            _ => return None,
        })
    }
}

/// One attribute of an agent's contact schema. Never deleted, only archived.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomAttribute {
    pub name: String,
    pub label: String,
    pub kind: AttributeType,
    pub description: Option<String>,
    pub archived: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A contact of one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: String,
    pub workspace_id: String,
    pub agent_id: String,
    /// The integrator's id for the person; unique per agent. Identity verification's
    /// `user_id` is matched against it.
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phonenumber: Option<String>,
    /// `[{label, stripe_id?, stripe_email?}]`, as checked by [`read_contact`].
    pub stripe_accounts: Vec<Value>,
    pub custom_attributes: Map<String, Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Create or update: decides what is required and what `null` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// A contact's fields as given. `None`: not given (kept on update); `Some(None)`:
/// set to null. In `custom_attributes` a null value removes the attribute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactFields {
    pub external_id: Option<String>,
    pub name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub phonenumber: Option<Option<String>>,
    pub stripe_accounts: Option<Vec<Value>>,
    pub custom_attributes: Map<String, Value>,
}

impl ContactFields {
    /// A new contact from these (create) fields.
    pub fn into_contact(
        self,
        workspace_id: &str,
        agent_id: &str,
        id: String,
        now: Millis,
    ) -> Contact {
        let mut c = Contact {
            id,
            workspace_id: workspace_id.to_owned(),
            agent_id: agent_id.to_owned(),
            external_id: String::new(),
            name: None,
            email: None,
            phonenumber: None,
            stripe_accounts: Vec::new(),
            custom_attributes: Map::new(),
            created_at: now,
            updated_at: now,
        };
        self.apply(&mut c, now);
        c
    }

    /// Sets the given fields on `c`; attributes merge (null removes one).
    pub fn apply(self, c: &mut Contact, now: Millis) {
        if let Some(x) = self.external_id {
            c.external_id = x;
        }
        if let Some(x) = self.name {
            c.name = x;
        }
        if let Some(x) = self.email {
            c.email = x;
        }
        if let Some(x) = self.phonenumber {
            c.phonenumber = x;
        }
        if let Some(x) = self.stripe_accounts {
            c.stripe_accounts = x;
        }
        for (k, v) in self.custom_attributes {
            if v.is_null() {
                c.custom_attributes.remove(&k);
            } else {
                c.custom_attributes.insert(k, v);
            }
        }
        c.updated_at = now;
    }
}

/// The JSON type name a validation message reports, as zod words it.
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn expected(what: &str, v: &Value) -> String {
    format!("Expected {what}, received {}", type_name(v))
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A nullable text field: trimmed, empty counts as null.
fn optional_text(
    v: &Value,
    field: &str,
    max: usize,
    e: &mut FieldErrors,
) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => {
            let s = s.trim();
            if s.chars().count() > max {
                e.insert(field.into(), format!("must be at most {max} characters"));
                None
            } else if has_control(s) {
                e.insert(field.into(), "must not contain control characters".into());
                None
            } else {
                Some((!s.is_empty()).then(|| s.to_owned()))
            }
        }
        other => {
            e.insert(field.into(), expected("string", other));
            None
        }
    }
}

/// One contact of a create or update body, checked against the agent's schema.
/// `prefix` goes before each field name in the errors (`users.3.`). Keys that are
/// neither contact fields nor attributes of the schema are dropped, as Chatbase
/// drops them.
pub fn read_contact(
    v: &Value,
    schema: &[CustomAttribute],
    mode: Mode,
    prefix: &str,
    e: &mut FieldErrors,
) -> ContactFields {
    let mut out = ContactFields::default();
    let at = |f: &str| format!("{prefix}{f}");
    let Some(obj) = v.as_object() else {
        let field = prefix.trim_end_matches('.');
        let field = if field.is_empty() { "body" } else { field };
        e.insert(field.into(), expected("object", v));
        return out;
    };
    match obj.get("external_id") {
        None if mode == Mode::Create => {
            e.insert(at("external_id"), "Required".into());
        }
        None => {}
        Some(x) => out.external_id = external_id(x, &at("external_id"), e),
    }
    if let Some(x) = obj.get("name") {
        out.name = optional_text(x, &at("name"), NAME_MAX, e);
    }
    if let Some(x) = obj.get("email") {
        out.email = optional_text(x, &at("email"), crate::lead::EMAIL_MAX, e);
        if let Some(Some(m)) = &out.email
            && !crate::lead::looks_like_email(m)
        {
            e.insert(at("email"), "Invalid email".into());
        }
    }
    if let Some(x) = obj.get("phonenumber") {
        out.phonenumber = optional_text(x, &at("phonenumber"), PHONE_MAX, e);
        if let Some(Some(p)) = &out.phonenumber
            && !crate::lead::looks_like_phone(p)
        {
            e.insert(at("phonenumber"), "Invalid phone number".into());
        }
    }
    if let Some(x) = obj.get("stripe_accounts") {
        out.stripe_accounts = stripe_accounts(x, &at("stripe_accounts"), e);
    }
    match obj.get("custom_attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(attrs)) => {
            out.custom_attributes = custom_attributes(attrs, schema, mode, &at, e);
        }
        Some(other) => {
            e.insert(at("custom_attributes"), expected("object", other));
        }
    }
    out
}

/// A contact's `external_id`: a non-empty string without control characters, at
/// most [`EXTERNAL_ID_MAX`] characters once trimmed.
fn external_id(v: &Value, field: &str, e: &mut FieldErrors) -> Option<String> {
    let Value::String(s) = v else {
        e.insert(field.into(), expected("string", v));
        return None;
    };
    let s = s.trim();
    let problem = if s.is_empty() {
        "must not be empty".to_owned()
    } else if s.chars().count() > EXTERNAL_ID_MAX {
        format!("must be at most {EXTERNAL_ID_MAX} characters")
    } else if has_control(s) {
        "must not contain control characters".to_owned()
    } else {
        return Some(s.to_owned());
    };
    e.insert(field.into(), problem);
    None
}

/// The custom attributes of a body, each coerced to its kind in the agent's
/// schema. Keys the schema does not have are dropped (Chatbase strips them); null
/// clears an attribute on update, archived ones included, and is dropped on create;
/// an archived attribute takes nothing else.
fn custom_attributes(
    attrs: &Map<String, Value>,
    schema: &[CustomAttribute],
    mode: Mode,
    at: &dyn Fn(&str) -> String,
    e: &mut FieldErrors,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in attrs {
        let Some(a) = schema.iter().find(|a| &a.name == key) else {
            continue;
        };
        let field = at(&format!("custom_attributes.{key}"));
        if value.is_null() {
            if mode == Mode::Update {
                out.insert(key.clone(), Value::Null);
            }
            continue;
        }
        if a.archived {
            e.insert(
                field,
                "The attribute is archived; it can only be set to null".into(),
            );
            continue;
        }
        match coerce(a.kind, value) {
            Ok(v) => {
                out.insert(key.clone(), v);
            }
            Err(m) => {
                e.insert(field, m);
            }
        }
    }
    out
}

fn stripe_accounts(v: &Value, field: &str, e: &mut FieldErrors) -> Option<Vec<Value>> {
    let items = match v {
        Value::Null => return Some(Vec::new()),
        Value::Array(items) => items,
        other => {
            e.insert(field.into(), expected("array", other));
            return None;
        }
    };
    if items.len() > STRIPE_ACCOUNTS_MAX {
        e.insert(
            field.into(),
            format!("must have at most {STRIPE_ACCOUNTS_MAX} items"),
        );
        return None;
    }
    let before = e.len();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("{field}.{i}");
        let Some(obj) = item.as_object() else {
            e.insert(at, expected("object", item));
            continue;
        };
        let mut account = Map::new();
        for key in ["label", "stripe_id", "stripe_email"] {
            match obj.get(key) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) if s.chars().count() <= STRIPE_FIELD_MAX => {
                    account.insert(key.into(), Value::String(s.trim().to_owned()));
                }
                Some(Value::String(_)) => {
                    e.insert(
                        format!("{at}.{key}"),
                        format!("must be at most {STRIPE_FIELD_MAX} characters"),
                    );
                }
                Some(other) => {
                    e.insert(format!("{at}.{key}"), expected("string", other));
                }
            }
        }
        if !account.contains_key("label") {
            e.entry(format!("{at}.label"))
                .or_insert_with(|| "Required".into());
        }
        if !account.contains_key("stripe_id") && !account.contains_key("stripe_email") {
            e.entry(format!("{at}.stripe_id"))
                .or_insert_with(|| "stripe_id or stripe_email is required".into());
        }
        out.push(Value::Object(account));
    }
    (e.len() == before).then_some(out)
}

/// A value for an attribute of type `kind`, coerced as Chatbase does: booleans
/// from `"true"`/`"false"` and `1`/`0`, dates from what a JavaScript `Date` would
/// commonly take (`YYYY-MM-DD`, RFC 3339, epoch milliseconds), stored as ISO 8601.
pub fn coerce(kind: AttributeType, v: &Value) -> Result<Value, String> {
    match (kind, v) {
        (AttributeType::Text, Value::String(s)) => {
            if s.chars().count() > TEXT_VALUE_MAX {
                Err(format!("must be at most {TEXT_VALUE_MAX} characters"))
            } else {
                Ok(v.clone())
            }
        }
        (AttributeType::Text, other) => Err(expected("string", other)),
        (AttributeType::Number, Value::Number(_)) => Ok(v.clone()),
        (AttributeType::Number, other) => Err(expected("number", other)),
        (AttributeType::Boolean, Value::Bool(_)) => Ok(v.clone()),
        (AttributeType::Boolean, Value::String(s)) if s == "true" || s == "false" => {
            Ok(Value::Bool(s == "true"))
        }
        (AttributeType::Boolean, Value::Number(n)) if n.as_f64() == Some(1.0) => {
            Ok(Value::Bool(true))
        }
        (AttributeType::Boolean, Value::Number(n)) if n.as_f64() == Some(0.0) => {
            Ok(Value::Bool(false))
        }
        (AttributeType::Boolean, other) => Err(expected("boolean", other)),
        (AttributeType::Date, Value::String(s)) => crate::time_fmt::parse_date_bound(s, false)
            .map(|ms| Value::String(crate::time_fmt::iso8601(ms)))
            .ok_or_else(|| "Invalid date".to_owned()),
        (AttributeType::Date, Value::Number(n)) => n
            .as_i64()
            // Years 0–9999, what ISO 8601's four-digit years hold.
            .filter(|ms| (-62_167_219_200_000..=253_402_300_799_999).contains(ms))
            .map(|ms| Value::String(crate::time_fmt::iso8601(ms)))
            .ok_or_else(|| "Invalid date".to_owned()),
        (AttributeType::Date, other) => Err(expected("date string", other)),
    }
}

/// A new attribute as given to the create endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttribute {
    pub name: String,
    pub label: String,
    pub kind: AttributeType,
    pub description: Option<String>,
    pub archived: bool,
}

/// A `^[a-zA-Z][a-zA-Z0-9_-]*$` name of at most [`ATTRIBUTE_NAME_MAX`] characters.
pub fn valid_attribute_name(name: &str) -> bool {
    name.len() <= ATTRIBUTE_NAME_MAX
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn bool_field(obj: &Map<String, Value>, key: &str, e: &mut FieldErrors) -> Option<bool> {
    match obj.get(key)? {
        Value::Bool(b) => Some(*b),
        other => {
            e.insert(key.into(), expected("boolean", other));
            None
        }
    }
}

fn string_field(
    obj: &Map<String, Value>,
    key: &str,
    max: usize,
    e: &mut FieldErrors,
) -> Option<Option<String>> {
    optional_text(obj.get(key)?, key, max, e)
}

fn body_object<'a>(v: &'a Value, e: &mut FieldErrors) -> Option<&'a Map<String, Value>> {
    let obj = v.as_object();
    if obj.is_none() {
        e.insert("body".into(), expected("object", v));
    }
    obj
}

/// The create endpoint's body: `name` and `type` required, `label` defaulting to
/// the name. Other keys are dropped.
pub fn read_new_attribute(v: &Value) -> Result<NewAttribute, FieldErrors> {
    let mut e = FieldErrors::new();
    let obj = body_object(v, &mut e).ok_or_else(|| e.clone())?;
    let name = match obj.get("name") {
        None => {
            e.insert("name".into(), "Required".into());
            None
        }
        Some(Value::String(n)) if RESERVED_NAMES.contains(&n.to_ascii_lowercase().as_str()) => {
            e.insert("name".into(), format!("'{n}' is a reserved field name"));
            None
        }
        Some(Value::String(n)) if valid_attribute_name(n) => Some(n.clone()),
        Some(Value::String(_)) => {
            e.insert(
                "name".into(),
                format!(
                    "Invalid field name format: must start with a letter and hold only letters, digits, '_' and '-' (at most {ATTRIBUTE_NAME_MAX})"
                ),
            );
            None
        }
        Some(other) => {
            e.insert("name".into(), expected("string", other));
            None
        }
    };
    let kind = match obj.get("type") {
        None => {
            e.insert("type".into(), "Required".into());
            None
        }
        Some(t) => {
            let kind = t.as_str().and_then(AttributeType::parse);
            if kind.is_none() {
                e.insert(
                    "type".into(),
                    "Invalid type. Must be one of: text, number, boolean, date".into(),
                );
            }
            kind
        }
    };
    let label = string_field(obj, "label", LABEL_MAX, &mut e).flatten();
    let description = string_field(obj, "description", DESCRIPTION_MAX, &mut e).flatten();
    let archived = bool_field(obj, "archived", &mut e).unwrap_or(false);
    match (name, kind) {
        (Some(name), Some(kind)) if e.is_empty() => Ok(NewAttribute {
            label: label.unwrap_or_else(|| name.clone()),
            name,
            kind,
            description,
            archived,
        }),
        _ => Err(e),
    }
}

/// The update endpoint's body applied to `a`: `label`, `description`, `archived`;
/// `name` and `type` cannot change (sending the same values is allowed).
pub fn apply_attribute_patch(
    a: &mut CustomAttribute,
    v: &Value,
    now: Millis,
) -> Result<(), FieldErrors> {
    let mut e = FieldErrors::new();
    let obj = body_object(v, &mut e).ok_or_else(|| e.clone())?;
    if obj
        .get("name")
        .is_some_and(|n| n.as_str() != Some(a.name.as_str()))
    {
        e.insert("name".into(), "cannot be changed".into());
    }
    if obj
        .get("type")
        .is_some_and(|t| t.as_str() != Some(a.kind.as_str()))
    {
        e.insert("type".into(), "cannot be changed".into());
    }
    let label = string_field(obj, "label", LABEL_MAX, &mut e);
    if label == Some(None) {
        e.insert("label".into(), "must not be empty".into());
    }
    let description = string_field(obj, "description", DESCRIPTION_MAX, &mut e);
    let archived = bool_field(obj, "archived", &mut e);
    if !e.is_empty() {
        return Err(e);
    }
    if let Some(Some(l)) = label {
        a.label = l;
    }
    if let Some(d) = description {
        a.description = d;
    }
    if let Some(x) = archived {
        a.archived = x;
    }
    a.updated_at = now;
    Ok(())
}

/// A fresh identity-verification secret.
pub fn new_identity_secret() -> String {
    ids::alphanumeric(40)
}

/// Identity verification's user hash: hex HMAC-SHA256 of `user_id` keyed by the
/// agent's secret (`crypto.createHmac("sha256", secret).update(userId).digest("hex")`).
pub fn user_hash(secret: &str, user_id: &str) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(user_id.as_bytes());
    crate::webhook::hex(&mac.finalize().into_bytes())
}

/// Whether `hash` is `user_id`'s hash under `secret`, compared in constant time
/// (either case of hex accepted).
pub fn verify_user_hash(secret: &str, user_id: &str, hash: &str) -> bool {
    let Some(bytes) = unhex(hash) else {
        return false;
    };
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(user_id.as_bytes());
    mac.verify_slice(&bytes).is_ok()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// `user_metadata` as the agent is shown it: compact JSON of at most
/// [`METADATA_MAX_CHARS`] characters (the rest cut off).
pub fn metadata_text(metadata: &Map<String, Value>) -> Option<String> {
    if metadata.is_empty() {
        return None;
    }
    let text = Value::Object(metadata.clone()).to_string();
    Some(text.chars().take(METADATA_MAX_CHARS).collect())
}

/// A placeholder's text for a value: strings as they are, other values as JSON.
fn placeholder_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The agent's instructions with `{{field}}` placeholders filled from the
/// identified contact: `{{external_id}}` (alias `{{user_id}}`), `{{name}}`,
/// `{{email}}`, `{{phonenumber}}` and `{{attribute}}` for each of the agent's
/// custom attributes (spaces inside the braces allowed). A placeholder of a known
/// field the contact lacks, or of any known field when there is no contact, becomes
/// empty text; `{{anything else}}` stays as written.
pub fn fill_placeholders(
    instructions: &str,
    contact: Option<&Contact>,
    attribute_names: &BTreeSet<String>,
) -> String {
    if !instructions.contains("{{") {
        return instructions.to_owned();
    }
    let value = |key: &str| -> Option<String> {
        let c = contact;
        let field = |f: Option<&Option<String>>| f.cloned().flatten().unwrap_or_default();
        Some(match key {
            "external_id" | "user_id" => c.map(|c| c.external_id.clone()).unwrap_or_default(),
            "name" => field(c.map(|c| &c.name)),
            "email" => field(c.map(|c| &c.email)),
            "phonenumber" | "phone" => field(c.map(|c| &c.phonenumber)),
            k if attribute_names.contains(k) => c
                .and_then(|c| c.custom_attributes.get(k))
                .map(placeholder_text)
                .unwrap_or_default(),
            _ => return None,
        })
    };
    let mut out = String::with_capacity(instructions.len());
    let mut rest = instructions;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = after[..end].trim();
        match value(key) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What the agent is told about an identified visitor, after its instructions:
/// the contact's fields and attributes (those with values), and the visitor's own
/// unverified `user_metadata`.
pub fn identity_context(
    user_id: &str,
    contact: Option<&Contact>,
    metadata: Option<&str>,
) -> String {
    let mut out = format!("The user is signed in and verified, with user id {user_id}.");
    if let Some(c) = contact {
        let mut fields = Vec::new();
        for (k, v) in [
            ("name", &c.name),
            ("email", &c.email),
            ("phonenumber", &c.phonenumber),
        ] {
            if let Some(v) = v {
                fields.push(format!("- {k}: {v}"));
            }
        }
        for (k, v) in &c.custom_attributes {
            fields.push(format!("- {k}: {}", placeholder_text(v)));
        }
        if !fields.is_empty() {
            out.push_str("\nWhat is known about them:\n");
            out.push_str(&fields.join("\n"));
        }
    }
    if let Some(m) = metadata {
        out.push_str("\nDetails they gave about themselves (not verified): ");
        out.push_str(m);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Vec<CustomAttribute> {
        let a = |name: &str, kind, archived| CustomAttribute {
            name: name.into(),
            label: name.into(),
            kind,
            description: None,
            archived,
            created_at: 0,
            updated_at: 0,
        };
        vec![
            a("plan", AttributeType::Text, false),
            a("age", AttributeType::Number, false),
            a("vip", AttributeType::Boolean, false),
            a("since", AttributeType::Date, false),
            a("old", AttributeType::Text, true),
        ]
    }

    #[test]
    fn a_contact_is_checked_against_the_schema_and_unknown_keys_are_dropped() {
        let mut e = FieldErrors::new();
        let f = read_contact(
            &json!({"external_id": " u1 ", "name": "Ann", "email": "ann@example.com",
                    "extra": 1, "custom_attributes": {"plan": "pro", "age": 41, "vip": "true",
                    "since": "2024-01-15", "nope": 1}}),
            &schema(),
            Mode::Create,
            "users.0.",
            &mut e,
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(f.external_id.as_deref(), Some("u1"));
        assert_eq!(
            Value::Object(f.custom_attributes),
            json!({"plan": "pro", "age": 41, "vip": true, "since": "2024-01-15T00:00:00.000Z"})
        );
    }

    #[test]
    fn every_bad_part_of_a_contact_is_named() {
        let mut e = FieldErrors::new();
        read_contact(
            &json!({"name": 5, "email": "not-an-email", "stripe_accounts": [{"stripe_id": "x"}],
                    "custom_attributes": {"age": "forty", "vip": 2, "since": "soon", "old": "x",
                    "plan": "p".repeat(TEXT_VALUE_MAX + 1)}}),
            &schema(),
            Mode::Create,
            "users.2.",
            &mut e,
        );
        let fields: Vec<&str> = e.keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "users.2.custom_attributes.age",
                "users.2.custom_attributes.old",
                "users.2.custom_attributes.plan",
                "users.2.custom_attributes.since",
                "users.2.custom_attributes.vip",
                "users.2.email",
                "users.2.external_id",
                "users.2.name",
                "users.2.stripe_accounts.0.label",
            ]
        );
        assert_eq!(
            e["users.2.custom_attributes.age"],
            "Expected number, received string"
        );
    }

    #[test]
    fn an_update_may_clear_an_archived_attribute_but_not_set_it() {
        let mut e = FieldErrors::new();
        let f = read_contact(
            &json!({"custom_attributes": {"old": null}}),
            &schema(),
            Mode::Update,
            "",
            &mut e,
        );
        assert!(e.is_empty());
        assert_eq!(f.custom_attributes.get("old"), Some(&Value::Null));
        read_contact(
            &json!({"custom_attributes": {"old": "x"}}),
            &schema(),
            Mode::Update,
            "",
            &mut e,
        );
        assert!(e.contains_key("custom_attributes.old"));
    }

    #[test]
    fn attribute_names_follow_the_pattern_and_avoid_reserved_ones() {
        assert!(read_new_attribute(&json!({"name": "plan_tier-2", "type": "text"})).is_ok());
        for bad in ["2plan", "pl an", "", "email", "Name", &"a".repeat(65)] {
            assert!(
                read_new_attribute(&json!({"name": bad, "type": "text"})).is_err(),
                "{bad}"
            );
        }
        let e = read_new_attribute(&json!({"name": "x", "type": "color"})).unwrap_err();
        assert_eq!(
            e["type"],
            "Invalid type. Must be one of: text, number, boolean, date"
        );
    }

    #[test]
    fn the_user_hash_is_chatbases_hmac_sha256_hex() {
        // echo -n user-1 | openssl dgst -sha256 -hmac secret
        let h = user_hash("secret", "user-1");
        assert_eq!(
            h,
            "1d16fd7e96e8a9681f283b8a251822ffdc71e2a5bda0c5267a044874fa21b82b"
        );
        assert!(verify_user_hash("secret", "user-1", &h));
        assert!(verify_user_hash(
            "secret",
            "user-1",
            &h.to_ascii_uppercase()
        ));
        assert!(!verify_user_hash("secret", "user-2", &h));
        assert!(!verify_user_hash("other", "user-1", &h));
        assert!(!verify_user_hash("secret", "user-1", "zz"));
    }

    #[test]
    fn placeholders_fill_from_the_contact_and_unknown_ones_stay() {
        let c = Contact {
            id: "c".into(),
            workspace_id: "w".into(),
            agent_id: "a".into(),
            external_id: "u1".into(),
            name: Some("Ann".into()),
            email: None,
            phonenumber: None,
            stripe_accounts: Vec::new(),
            custom_attributes: json!({"plan": "pro", "age": 41})
                .as_object()
                .unwrap()
                .clone(),
            created_at: 0,
            updated_at: 0,
        };
        let names: BTreeSet<String> =
            ["plan".to_owned(), "age".to_owned(), "vip".to_owned()].into();
        let text = "Hi {{name}} ({{ user_id }}), plan {{plan}}, age {{age}}, vip {{vip}}, \
                    email {{email}}, {{unknown}} {{";
        assert_eq!(
            fill_placeholders(text, Some(&c), &names),
            "Hi Ann (u1), plan pro, age 41, vip , email , {{unknown}} {{"
        );
        assert_eq!(
            fill_placeholders(text, None, &names),
            "Hi  (), plan , age , vip , email , {{unknown}} {{"
        );
    }
}
