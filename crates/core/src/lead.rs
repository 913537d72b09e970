//! Leads: the agent's lead form (Chatbase v1's `collectCustomerInformation`: a
//! title, and which of name, email and phone are asked for and required) and the
//! checks a visitor's answers go through before they are stored.

use serde_json::{Value, json};

use crate::{FieldErrors, Millis};

pub const TITLE_MAX: usize = 200;
pub const LABEL_MAX: usize = 100;
pub const NAME_MAX: usize = 100;
pub const EMAIL_MAX: usize = 254;
pub const PHONE_MAX: usize = 32;
/// Answers before the form shows, at most.
pub const SHOW_AFTER_MAX: u64 = 100;

/// One field of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadField {
    /// Asked for.
    pub active: bool,
    /// Must be filled in (only when asked for).
    pub required: bool,
    pub label: String,
}

/// The agent's lead form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadForm {
    pub title: String,
    pub name: LeadField,
    pub email: LeadField,
    pub phone: LeadField,
    /// The widget shows the form after this many answers (0: before the first
    /// message). An agentbase extension; Chatbase decides with a prompt.
    pub show_after_answers: u64,
}

const FIELDS: [(&str, &str); 3] = [("name", "Name"), ("email", "Email"), ("phone", "Phone")];

impl LeadForm {
    /// Reads v1's `collectCustomerInformation` object, naming every bad part under
    /// `prefix`.
    pub fn from_json(v: &Value, prefix: &str) -> Result<LeadForm, FieldErrors> {
        let mut e = FieldErrors::new();
        let Some(obj) = v.as_object() else {
            e.insert(prefix.to_owned(), "must be an object".into());
            return Err(e);
        };
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "title" | "name" | "email" | "phone" | "showAfterAnswers"
            ) {
                e.insert(format!("{prefix}.{k}"), "unknown field".into());
            }
        }
        let title = match obj.get("title") {
            None | Some(Value::Null) => "Let us know how to contact you".to_owned(),
            Some(Value::String(s)) if s.chars().count() <= TITLE_MAX => s.clone(),
            Some(_) => {
                e.insert(
                    format!("{prefix}.title"),
                    format!("must be a string of at most {TITLE_MAX} characters"),
                );
                String::new()
            }
        };
        let mut fields = FIELDS.iter().map(|(key, default_label)| {
            field(
                obj.get(*key),
                &format!("{prefix}.{key}"),
                default_label,
                &mut e,
            )
        });
        let (name, email, phone) = (
            fields.next().unwrap_or_else(inactive),
            fields.next().unwrap_or_else(inactive),
            fields.next().unwrap_or_else(inactive),
        );
        let show_after_answers = match obj.get("showAfterAnswers") {
            None | Some(Value::Null) => 1,
            Some(v) => match v.as_u64() {
                Some(n) if n <= SHOW_AFTER_MAX => n,
                _ => {
                    e.insert(
                        format!("{prefix}.showAfterAnswers"),
                        format!("must be an integer from 0 to {SHOW_AFTER_MAX}"),
                    );
                    0
                }
            },
        };
        if e.is_empty() {
            Ok(LeadForm {
                title,
                name,
                email,
                phone,
                show_after_answers,
            })
        } else {
            Err(e)
        }
    }

    /// The form as v1 writes it (and as it is stored).
    pub fn to_json(&self) -> Value {
        let f =
            |x: &LeadField| json!({"active": x.active, "required": x.required, "label": x.label});
        json!({
            "title": self.title,
            "name": f(&self.name),
            "email": f(&self.email),
            "phone": f(&self.phone),
            "showAfterAnswers": self.show_after_answers,
        })
    }

    /// Whether the form asks for anything at all.
    pub fn asks_anything(&self) -> bool {
        self.name.active || self.email.active || self.phone.active
    }
}

fn inactive() -> LeadField {
    LeadField {
        active: false,
        required: false,
        label: String::new(),
    }
}

fn field(v: Option<&Value>, path: &str, default_label: &str, e: &mut FieldErrors) -> LeadField {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return LeadField {
            label: default_label.to_owned(),
            ..inactive()
        };
    };
    let Some(obj) = v.as_object() else {
        e.insert(path.to_owned(), "must be an object".into());
        return inactive();
    };
    let flag = |key: &str, e: &mut FieldErrors| match obj.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            e.insert(format!("{path}.{key}"), "must be a boolean".into());
            false
        }
    };
    let active = flag("active", e);
    let required = flag("required", e);
    let label = match obj.get("label") {
        None | Some(Value::Null) => default_label.to_owned(),
        Some(Value::String(s)) if s.chars().count() <= LABEL_MAX => s.clone(),
        Some(_) => {
            e.insert(
                format!("{path}.label"),
                format!("must be a string of at most {LABEL_MAX} characters"),
            );
            String::new()
        }
    };
    for k in obj.keys() {
        if !matches!(k.as_str(), "active" | "required" | "label") {
            e.insert(format!("{path}.{k}"), "unknown field".into());
        }
    }
    LeadField {
        active,
        required: active && required,
        label,
    }
}

/// A visitor's answers, as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// A stored lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub id: String,
    pub workspace_id: String,
    pub agent_id: String,
    pub conversation_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub created_at: Millis,
}

/// The answers trimmed, empty ones dropped, checked against the form: required
/// fields present, fields not asked for absent, an email that looks like one, a
/// phone number of digits and the usual separators. Every problem by field.
pub fn check_answers(form: &LeadForm, input: LeadInput) -> Result<LeadInput, FieldErrors> {
    let mut e = FieldErrors::new();
    let clean = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let out = LeadInput {
        name: clean(input.name),
        email: clean(input.email),
        phone: clean(input.phone),
    };
    for (key, f, v) in [
        ("name", &form.name, &out.name),
        ("email", &form.email, &out.email),
        ("phone", &form.phone, &out.phone),
    ] {
        match v {
            None if f.required => {
                e.insert(key.into(), "is required".into());
            }
            Some(_) if !f.active => {
                e.insert(key.into(), "is not asked for by this form".into());
            }
            _ => {}
        }
    }
    if let Some(n) = &out.name
        && (n.chars().count() > NAME_MAX || n.chars().any(char::is_control))
    {
        e.insert(
            "name".into(),
            format!("must be at most {NAME_MAX} characters, without control characters"),
        );
    }
    if let Some(m) = &out.email
        && !looks_like_email(m)
    {
        e.insert("email".into(), "must be an email address".into());
    }
    if let Some(p) = &out.phone
        && !looks_like_phone(p)
    {
        e.insert(
            "phone".into(),
            "must be a phone number (digits, spaces, + - . ( ))".into(),
        );
    }
    if !form.asks_anything() {
        e.insert("form".into(), "this agent does not collect leads".into());
    } else if e.is_empty() && out.name.is_none() && out.email.is_none() && out.phone.is_none() {
        e.insert("form".into(), "nothing was filled in".into());
    }
    if e.is_empty() { Ok(out) } else { Err(e) }
}

pub(crate) fn looks_like_email(m: &str) -> bool {
    let Some((local, domain)) = m.rsplit_once('@') else {
        return false;
    };
    m.len() <= EMAIL_MAX
        && !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !m
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"' | ','))
}

fn looks_like_phone(p: &str) -> bool {
    let digits = p.chars().filter(char::is_ascii_digit).count();
    p.len() <= PHONE_MAX
        && (5..=20).contains(&digits)
        && p.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '.' | '(' | ')'))
}

/// The form as stored on the agent, if any (a stored form always parses; a
/// corrupt one counts as none).
pub fn form_of(stored: Option<&Value>) -> Option<LeadForm> {
    LeadForm::from_json(stored?, "collectCustomerInformation").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> LeadForm {
        LeadForm::from_json(
            &json!({"title": "Stay in touch", "name": {"active": true, "label": "Your name"},
                    "email": {"active": true, "required": true}, "showAfterAnswers": 2}),
            "f",
        )
        .unwrap()
    }

    #[test]
    fn the_v1_shape_reads_with_defaults_and_round_trips() {
        let f = form();
        assert_eq!(f.title, "Stay in touch");
        assert!(f.name.active && !f.name.required);
        assert!(f.email.required && !f.phone.active);
        assert_eq!(f.email.label, "Email");
        assert_eq!(f.show_after_answers, 2);
        assert_eq!(LeadForm::from_json(&f.to_json(), "f").unwrap(), f);
    }

    #[test]
    fn every_bad_part_of_a_form_is_named() {
        let e = LeadForm::from_json(
            &json!({"title": 5, "name": {"active": "yes"}, "phone": [], "showAfterAnswers": -1, "x": 1}),
            "c",
        )
        .unwrap_err();
        for k in [
            "c.title",
            "c.name.active",
            "c.phone",
            "c.showAfterAnswers",
            "c.x",
        ] {
            assert!(e.contains_key(k), "{k}: {e:?}");
        }
        assert!(LeadForm::from_json(&json!([]), "c").is_err());
    }

    #[test]
    fn answers_are_checked_against_the_form() {
        let f = form();
        let ok = check_answers(
            &f,
            LeadInput {
                name: Some("  Ann  ".into()),
                email: Some("ann@example.com".into()),
                phone: None,
            },
        )
        .unwrap();
        assert_eq!(ok.name.as_deref(), Some("Ann"));
        let e = check_answers(
            &f,
            LeadInput {
                name: Some("x".repeat(101)),
                email: Some("   ".into()),
                phone: Some("+1 555 0100".into()),
            },
        )
        .unwrap_err();
        assert_eq!(
            e.keys().map(String::as_str).collect::<Vec<_>>(),
            ["email", "name", "phone"]
        );
        for bad in ["a@b", "@b.c", "a b@c.d", "a@b.c,d@e.f", "<a@b.c>"] {
            assert!(!looks_like_email(bad), "{bad}");
        }
        for bad in ["12", "call me", "=1+2345678", &"1".repeat(40)] {
            assert!(!looks_like_phone(bad), "{bad}");
        }
        assert!(looks_like_phone("+49 (30) 123-4567"));
    }
}
