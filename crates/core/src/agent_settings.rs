//! The Agent settings beyond the basics: per-channel instructions, notification
//! mails, spam detection, voice, blocked countries and widget styles. They arrive as
//! JSON and are checked here against the official contract, every problem named by
//! its wire path, then kept as JSON (the shapes are the contract's own).

use serde_json::{Map, Value};

use crate::FieldErrors;

/// The channels `channelInstructions` may name (the contract's keys).
pub const CHANNELS: &[&str] = &[
    "chat_widget",
    "help_page",
    "center_stage",
    "side_panel",
    "slack",
    "whatsapp",
    "messenger",
    "instagram",
    "salesforce",
    "zendesk",
    "zendesk_messaging",
    "api",
    "email",
    "android_sdk",
    "ios_sdk",
    "phone",
    "search",
];

/// Spam detection (Chatbase `spamSettings`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpamSettings {
    pub enabled: bool,
    /// What counts as spam for this agent.
    pub prompt: String,
}

pub const SPAM_PROMPT_MAX: usize = 2000;
pub const NOTIFY_EMAILS_MAX: usize = 10;

pub const VOICE_NAMES: &[&str] = &[
    "Sarah",
    "Laura",
    "Alice",
    "Matilda",
    "Jessica",
    "Lily",
    "Bella",
    "Roger",
    "George",
    "Charlie",
    "Adam",
    "Daniel",
    "Brian",
    "Eric",
    "Chris",
    "Liam",
    "Harry",
    "Will",
    "Bill",
    "Callum",
    "Masry",
    "Hanafi",
    "Alberto Rodríguez",
    "Jhenny",
    "Anna",
    "Peter",
    "Marc Aurèle",
    "Marie Line",
    "Yasmin Alves",
    "Lax",
    "Skylar",
    "Corey",
    "Jacqueline",
    "Blake",
    "Pedro",
    "Marta",
    "Alloy",
    "Ash",
    "Ballad",
    "Coral",
    "Echo",
    "Fable",
    "Nova",
    "Onyx",
    "Sage",
    "Shimmer",
    "Nouran",
    "Nermin",
    "Othman",
    "Layla",
    "Nada",
    "Mariam",
    "Samir",
    "Eman",
    "Haneen",
    "Fahd",
    "Jasem",
    "Marwa",
    "Razan",
    "Yehya",
    "Hamdan",
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Enceladus",
    "Sulafat",
    "Mina",
    "Nina",
    "Ruby",
    "Mason",
    "Rohan",
];

pub const TRANSCRIBER_MODELS: &[&str] = &[
    "elevenlabs/scribe_v2_realtime",
    "cartesia/ink-2",
    "cartesia/ink-whisper",
    "deepgram/nova-3",
    "deepgram/nova-2",
    "deepgram/flux-general-multi",
    "soniox/stt-rt-v5",
    "soniox/stt-rt-v4",
    "hamsa/hamsa-ar",
];

pub const VOICE_MODELS: &[&str] = &[
    "gpt-4o-mini",
    "gpt-oss-120b",
    "gpt-oss-20b",
    "gpt-5.2",
    "gpt-5.5",
    "gpt-5.6-terra",
    "gpt-5.6-luna",
    "gpt-5-mini",
    "gpt-5-nano",
    "claude-opus-4-8",
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-opus-4-5",
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
    "gemini-2.5-pro",
    "gemini-3-flash",
    "gemini-3.1-flash-lite",
    "gemini-3.1-pro",
    "gemini-3.5-flash",
    "gemini-3.5-flash-lite",
    "gemini-3.6-flash",
    "grok-3",
    "grok-3-mini",
    "grok-4",
    "DeepSeek-V3",
    "DeepSeek-R1",
    "DeepSeek-V4-Flash",
    "Llama-4-Scout-17B-16E-Instruct",
    "Llama-4-Maverick-17B-128E-Instruct-FP8",
    "kimi-k2",
    "mistral-medium-3.5",
    "mistral-small-2603",
    "glm-5.2",
    "auto",
];

/// Collects problems under wire paths (`voiceSettings.voice.speed`).
struct Checker<'e> {
    errors: &'e mut FieldErrors,
}

impl Checker<'_> {
    fn bad(&mut self, path: &str, msg: impl Into<String>) {
        self.errors
            .entry(path.to_owned())
            .or_insert_with(|| msg.into());
    }

    /// The object at `path`, or a problem; unknown keys are named.
    fn object<'v>(
        &mut self,
        v: &'v Value,
        path: &str,
        known: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = v.as_object() else {
            self.bad(path, "must be an object");
            return None;
        };
        for k in map.keys() {
            if !known.contains(&k.as_str()) {
                self.bad(&format!("{path}.{k}"), format!("unknown field `{k}`"));
            }
        }
        Some(map)
    }

    fn required(&mut self, map: &Map<String, Value>, path: &str, keys: &[&str]) {
        for k in keys {
            if !map.contains_key(*k) {
                self.bad(&format!("{path}.{k}"), "Required");
            }
        }
    }

    fn boolean(&mut self, map: &Map<String, Value>, path: &str, key: &str, nullable: bool) {
        match map.get(key) {
            None | Some(Value::Bool(_)) => {}
            Some(Value::Null) if nullable => {}
            Some(_) => self.bad(&format!("{path}.{key}"), "must be a boolean"),
        }
    }

    fn string(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        max: usize,
        nullable: bool,
    ) {
        match map.get(key) {
            None => {}
            Some(Value::Null) if nullable => {}
            Some(Value::String(s)) if s.chars().count() <= max => {}
            Some(Value::String(_)) => {
                self.bad(
                    &format!("{path}.{key}"),
                    format!("must be at most {max} characters"),
                );
            }
            Some(_) => self.bad(&format!("{path}.{key}"), "must be a string"),
        }
    }

    fn one_of(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        allowed: &[&str],
        nullable: bool,
    ) {
        match map.get(key) {
            None => {}
            Some(Value::Null) if nullable => {}
            Some(Value::String(s)) if allowed.contains(&s.as_str()) => {}
            Some(_) => self.bad(
                &format!("{path}.{key}"),
                format!("must be one of {}", allowed.join(", ")),
            ),
        }
    }

    /// A number in `[min, max]`; `integer` insists on a whole number.
    fn number(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        range: (f64, f64),
        integer: bool,
        nullable: bool,
    ) {
        let field = format!("{path}.{key}");
        match map.get(key) {
            None => {}
            Some(Value::Null) if nullable => {}
            Some(Value::Number(n)) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if integer && !(n.is_i64() || n.is_u64() || x.fract() == 0.0) {
                    self.bad(&field, "must be an integer");
                } else if !(range.0..=range.1).contains(&x) {
                    self.bad(
                        &field,
                        format!("must be between {} and {}", range.0, range.1),
                    );
                }
            }
            Some(_) => self.bad(
                &field,
                if integer {
                    "must be an integer"
                } else {
                    "must be a number"
                },
            ),
        }
    }

    fn hex_colour(&mut self, map: &Map<String, Value>, path: &str, key: &str, also: &[&str]) {
        match map.get(key) {
            None => {}
            Some(Value::String(s)) if is_hex_colour(s) || also.contains(&s.as_str()) => {}
            Some(_) => self.bad(
                &format!("{path}.{key}"),
                "must be a colour: #RGB or #RRGGBB",
            ),
        }
    }
}

/// `#RGB` or `#RRGGBB`, any case (the contract's pattern).
pub fn is_hex_colour(s: &str) -> bool {
    s.strip_prefix('#')
        .is_some_and(|h| matches!(h.len(), 3 | 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Words joined by single separators from `seps`, as `\w+([seps]?\w+)*` matches.
fn words_joined(s: &str, seps: &[char]) -> bool {
    !s.is_empty()
        && s.split(|c| seps.contains(&c))
            .all(|w| !w.is_empty() && w.chars().all(word))
}

/// The contract's address pattern, `^\w+([+.-]?\w+)*@\w+([.-]?\w+)*(\.\w{2,})+$`.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let Some((head, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    words_joined(local, &['+', '.', '-'])
        && words_joined(head, &['.', '-'])
        && tld.chars().count() >= 2
        && tld.chars().all(word)
}

/// `channelInstructions`: channel → instructions, or `{chat, voice}`.
pub fn check_channel_instructions(v: &Value, errors: &mut FieldErrors) {
    let mut c = Checker { errors };
    let path = "channelInstructions";
    let Some(map) = c.object(v, path, CHANNELS) else {
        return;
    };
    for (k, v) in map {
        if !CHANNELS.contains(&k.as_str()) {
            continue;
        }
        let field = format!("{path}.{k}");
        match v {
            Value::String(s) if s.chars().count() <= crate::agent::INSTRUCTIONS_MAX => {}
            Value::Object(_) => {
                if let Some(inner) = c.object(v, &field, &["chat", "voice"]) {
                    let max = crate::agent::INSTRUCTIONS_MAX;
                    c.string(inner, &field, "chat", max, false);
                    c.string(inner, &field, "voice", max, false);
                }
            }
            _ => c.bad(&field, "must be a string or {chat, voice}"),
        }
    }
}

/// The instructions `channelInstructions` gives a channel's chat, if any.
pub fn channel_chat_instructions<'v>(v: &'v Value, channel: &str) -> Option<&'v str> {
    match v.get(channel)? {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => o.get("chat").and_then(Value::as_str),
        _ => None,
    }
    .filter(|s| !s.trim().is_empty())
}

/// `notificationsSettings`: both daily notifications, each `{active, emails}`.
pub fn check_notifications(v: &Value, errors: &mut FieldErrors) {
    let mut c = Checker { errors };
    let path = "notificationsSettings";
    let kinds = ["dailyLeadsCollected", "dailyConversations"];
    let Some(map) = c.object(v, path, &kinds) else {
        return;
    };
    c.required(map, path, &kinds);
    for kind in kinds {
        let Some(n) = map.get(kind) else { continue };
        let field = format!("{path}.{kind}");
        let Some(inner) = c.object(n, &field, &["active", "emails"]) else {
            continue;
        };
        c.required(inner, &field, &["active", "emails"]);
        c.boolean(inner, &field, "active", false);
        match inner.get("emails") {
            None => {}
            Some(Value::Array(list)) => {
                if list.len() > NOTIFY_EMAILS_MAX {
                    c.bad(
                        &format!("{field}.emails"),
                        format!("at most {NOTIFY_EMAILS_MAX} addresses"),
                    );
                }
                for (i, e) in list.iter().enumerate() {
                    if !e.as_str().is_some_and(is_email) {
                        c.bad(&format!("{field}.emails[{i}]"), "must be an email address");
                    }
                }
            }
            Some(_) => c.bad(
                &format!("{field}.emails"),
                "must be an array of email addresses",
            ),
        }
    }
}

/// The recipients of an active daily notification (`dailyConversations`, …).
pub fn notification_recipients(v: &Value, kind: &str) -> Vec<String> {
    let n = &v[kind];
    if n["active"].as_bool() != Some(true) {
        return Vec::new();
    }
    n["emails"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// `spamSettings`: `{enabled, prompt}`.
pub fn check_spam(v: &Value, errors: &mut FieldErrors) -> Option<SpamSettings> {
    let mut c = Checker { errors };
    let path = "spamSettings";
    let map = c.object(v, path, &["enabled", "prompt"])?;
    c.required(map, path, &["enabled", "prompt"]);
    c.boolean(map, path, "enabled", false);
    c.string(map, path, "prompt", SPAM_PROMPT_MAX, false);
    Some(SpamSettings {
        enabled: map.get("enabled")?.as_bool()?,
        prompt: map.get("prompt")?.as_str()?.to_owned(),
    })
}

/// `voiceSettings` (stored and returned; agentbase has no voice mode).
pub fn check_voice(v: &Value, errors: &mut FieldErrors) {
    let mut c = Checker { errors };
    let path = "voiceSettings";
    let Some(map) = c.object(
        v,
        path,
        &[
            "voice",
            "transcriber",
            "recordings",
            "maxConcurrentSessions",
            "maxCallDurationSeconds",
            "maxDailyCallsPerUser",
            "model",
            "temperature",
            "allowInterruptions",
            "allowTextInput",
            "endConversationAfterSilenceSeconds",
            "initialMessage",
            "errorMessage",
        ],
    ) else {
        return;
    };
    if let Some(voice) = map.get("voice") {
        let p = format!("{path}.voice");
        let keys = [
            "voiceName",
            "speed",
            "stability",
            "similarity",
            "instructions",
        ];
        if let Some(m) = c.object(voice, &p, &keys) {
            c.required(m, &p, &["voiceName"]);
            c.one_of(m, &p, "voiceName", VOICE_NAMES, false);
            c.number(m, &p, "speed", (0.7, 1.2), false, false);
            c.number(m, &p, "stability", (0.0, 1.0), false, false);
            c.number(m, &p, "similarity", (0.0, 1.0), false, false);
            c.string(m, &p, "instructions", 500, false);
        }
    }
    if let Some(t) = map.get("transcriber") {
        let p = format!("{path}.transcriber");
        let keys = [
            "model",
            "language",
            "minSilenceDuration",
            "activationThreshold",
        ];
        if let Some(m) = c.object(t, &p, &keys) {
            c.required(m, &p, &keys);
            c.one_of(m, &p, "model", TRANSCRIBER_MODELS, false);
            c.string(m, &p, "language", 64, false);
            c.number(m, &p, "minSilenceDuration", (0.1, 3.0), false, false);
            c.number(m, &p, "activationThreshold", (0.0, 1.0), false, false);
        }
    }
    if let Some(r) = map.get("recordings") {
        let p = format!("{path}.recordings");
        if let Some(m) = c.object(r, &p, &["enabled", "retentionDays"]) {
            c.required(m, &p, &["enabled", "retentionDays"]);
            c.boolean(m, &p, "enabled", false);
            c.number(m, &p, "retentionDays", (0.0, 1e12), true, false);
        }
    }
    for key in [
        "maxConcurrentSessions",
        "maxCallDurationSeconds",
        "maxDailyCallsPerUser",
    ] {
        c.number(map, path, key, (1.0, 1e12), true, true);
    }
    c.one_of(map, path, "model", VOICE_MODELS, false);
    c.number(map, path, "temperature", (0.0, 1.0), false, false);
    c.boolean(map, path, "allowInterruptions", false);
    c.boolean(map, path, "allowTextInput", false);
    c.number(
        map,
        path,
        "endConversationAfterSilenceSeconds",
        (10.0, 1e12),
        true,
        true,
    );
    c.string(map, path, "initialMessage", 500, false);
    c.string(map, path, "errorMessage", 500, false);
}

pub const BLOCKED_COUNTRIES_MAX: usize = 300;

/// `blockedCountries`: ISO 3166-1 alpha-2 codes.
pub fn check_blocked_countries(list: &[String], errors: &mut FieldErrors) {
    if list.len() > BLOCKED_COUNTRIES_MAX {
        errors.insert(
            "blockedCountries".into(),
            format!("at most {BLOCKED_COUNTRIES_MAX} countries"),
        );
    }
    for (i, code) in list.iter().enumerate() {
        if !(code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic())) {
            errors.insert(
                format!("blockedCountries[{i}]"),
                "must be a two-letter country code".into(),
            );
        }
    }
}

/// Whether `country` (a visitor's ISO code) is in the blocked list.
pub fn is_blocked(blocked: &[String], country: &str) -> bool {
    blocked.iter().any(|b| b.eq_ignore_ascii_case(country))
}

const SUGGESTED: &str = "suggestedMessages";

/// `PUT /agents/{id}/styles`: the contract's `UpdateAgentStylesInput`.
pub fn check_styles(v: &Value, errors: &mut FieldErrors) {
    // `null` clears a key (see [`merge_styles`]), so only the values set are checked.
    let mut v = v.clone();
    for part in ["chat", "centerStage"] {
        if let Some(m) = v.get_mut(part).and_then(Value::as_object_mut) {
            m.retain(|_, x| !x.is_null());
        }
    }
    let v = &v;
    let mut c = Checker { errors };
    let path = "styles";
    let Some(map) = c.object(v, path, &["chat", "centerStage"]) else {
        return;
    };
    if let Some(chat) = map.get("chat") {
        check_chat_style(&mut c, chat, &format!("{path}.chat"));
    }
    if let Some(stage) = map.get("centerStage") {
        check_center_stage(&mut c, stage, &format!("{path}.centerStage"));
    }
}

/// `styles.chat`: the chat window.
fn check_chat_style(c: &mut Checker<'_>, chat: &Value, p: &str) {
    let keys = [
        "theme",
        "headerColor",
        "userMessageColor",
        "buttonColor",
        "displayName",
        "autoOpenChatWindowAfter",
        "mobile",
        "alignChatButton",
        "messagePlaceholder",
        "footer",
        "showFeedback",
        "showCopyButton",
        "showDictation",
        "showAttachments",
        "showVoiceMode",
        "dismissableNotice",
        "icon",
    ];
    if let Some(m) = c.object(chat, p, &keys) {
        c.one_of(m, p, "theme", &["light", "dark"], false);
        c.hex_colour(m, p, "headerColor", &[]);
        c.hex_colour(m, p, "userMessageColor", &[]);
        c.hex_colour(m, p, "buttonColor", &["transparent"]);
        c.string(m, p, "displayName", 100, true);
        c.number(m, p, "autoOpenChatWindowAfter", (0.0, 1e9), false, true);
        c.one_of(m, p, "alignChatButton", &["left", "right"], false);
        c.string(m, p, "messagePlaceholder", 200, true);
        c.string(m, p, "footer", 500, true);
        c.string(m, p, "dismissableNotice", 500, true);
        for b in [
            "showFeedback",
            "showCopyButton",
            "showDictation",
            "showAttachments",
            "showVoiceMode",
        ] {
            c.boolean(m, p, b, false);
        }
        // The chat bubble's icon: an image URL (an agentbase addition, as the
        // dashboard's upload is not part of the API).
        match m.get("icon") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.starts_with("https://") || s.starts_with("http://") => {}
            Some(_) => c.bad(&format!("{p}.icon"), "must be an http(s) image URL or null"),
        }
        if let Some(mobile) = m.get("mobile") {
            check_mobile_style(c, mobile, &format!("{p}.mobile"));
        }
    }
}

/// `styles.chat.mobile`.
fn check_mobile_style(c: &mut Checker<'_>, mobile: &Value, mp: &str) {
    let keys = ["initialMessages", "autoOpenChatWindowAfter", "showAutoOpen"];
    if let Some(mm) = c.object(mobile, mp, &keys) {
        c.boolean(mm, mp, "showAutoOpen", true);
        for key in ["initialMessages", "autoOpenChatWindowAfter"] {
            match mm.get(key) {
                None | Some(Value::Null) => {}
                Some(inner) => {
                    let ip = format!("{mp}.{key}");
                    if let Some(im) = c.object(inner, &ip, &["enabled", "value"]) {
                        c.required(im, &ip, &["enabled", "value"]);
                        c.boolean(im, &ip, "enabled", false);
                        let ok = match (key, im.get("value")) {
                            (_, None) => true,
                            ("initialMessages", Some(Value::Array(xs))) => {
                                xs.iter().all(Value::is_string)
                            }
                            ("autoOpenChatWindowAfter", Some(Value::Number(_))) => true,
                            _ => false,
                        };
                        if !ok {
                            c.bad(&format!("{ip}.value"), "has the wrong type");
                        }
                    }
                }
            }
        }
    }
}

/// `styles.centerStage`: the full-page chat.
fn check_center_stage(c: &mut Checker<'_>, stage: &Value, p: &str) {
    let keys = [
        "enabled",
        "displayName",
        "welcomeMessage",
        "messagePlaceholder",
        "dismissableNotice",
        "footer",
        SUGGESTED,
        "showChatBubble",
        "showAttachments",
        "showDictation",
        "showVoiceMode",
        "showCopyButton",
        "showFeedback",
        "showDataSource",
        "closeOnOutsideClick",
        "theme",
        "buttonColor",
        "headerColor",
        "userMessageColor",
        "tintedGrayscale",
        "accentColor",
        "customSurfaceColors",
        "typography",
        "width",
        "notificationIndicator",
        "notificationMessage",
    ];
    if let Some(m) = c.object(stage, p, &keys) {
        for b in [
            "enabled",
            "showChatBubble",
            "showAttachments",
            "showDictation",
            "showVoiceMode",
            "showCopyButton",
            "showFeedback",
            "showDataSource",
            "closeOnOutsideClick",
        ] {
            c.boolean(m, p, b, false);
        }
        c.string(m, p, "displayName", 100, true);
        c.string(m, p, "welcomeMessage", 500, true);
        c.string(m, p, "messagePlaceholder", 200, true);
        c.string(m, p, "dismissableNotice", 500, true);
        c.string(m, p, "footer", 500, true);
        c.one_of(m, p, "theme", &["light", "dark"], false);
        c.one_of(m, p, "width", &["small", "medium", "large"], false);
        for colour in ["buttonColor", "headerColor", "userMessageColor"] {
            c.hex_colour(m, p, colour, &[]);
        }
        if let Some(s) = m.get(SUGGESTED)
            && !s.is_null()
        {
            let mut inner = FieldErrors::new();
            crate::agent::check_suggested_messages(s, &mut inner);
            for (k, msg) in inner {
                c.bad(&format!("{p}.{k}"), msg);
            }
        }
        let objects: [(&str, &[&str]); 6] = [
            ("tintedGrayscale", &["enabled", "hue", "tint", "shade"]),
            ("accentColor", &["enabled", "color"]),
            (
                "customSurfaceColors",
                &["enabled", "background", "foreground"],
            ),
            ("typography", &["fontFamily", "fontSize"]),
            ("notificationIndicator", &["enabled", "number"]),
            ("notificationMessage", &["enabled", "text"]),
        ];
        for (key, fields) in objects {
            if let Some(o) = m.get(key) {
                check_stage_object(c, key, fields, o, &format!("{p}.{key}"));
            }
        }
    }
}

/// One of `centerStage`'s small objects (`tintedGrayscale`, `accentColor`, …).
fn check_stage_object(c: &mut Checker<'_>, key: &str, fields: &[&str], o: &Value, op: &str) {
    let Some(om) = c.object(o, op, fields) else {
        return;
    };
    c.required(om, op, fields);
    c.boolean(om, op, "enabled", false);
    match key {
        "tintedGrayscale" => {
            c.number(om, op, "hue", (0.0, 360.0), false, false);
            c.number(om, op, "tint", (0.0, 10.0), false, false);
            c.number(om, op, "shade", (0.0, 10.0), false, false);
        }
        "accentColor" => c.hex_colour(om, op, "color", &[]),
        "customSurfaceColors" => {
            c.hex_colour(om, op, "background", &[]);
            c.hex_colour(om, op, "foreground", &[]);
        }
        "typography" => {
            c.one_of(
                om,
                op,
                "fontFamily",
                &["Inter", "System", "Arial", "Helvetica", "Georgia"],
                false,
            );
            c.one_of(
                om,
                op,
                "fontSize",
                &["12px", "14px", "16px", "18px", "20px"],
                false,
            );
        }
        "notificationIndicator" => c.number(om, op, "number", (0.0, 99.0), true, false),
        _ => c.string(om, op, "text", 200, false),
    }
}

/// Merges a styles update into the stored styles: each of `chat` and
/// `centerStage` is merged key by key (a key set to `null` is cleared), so a client
/// can change one colour without resending the rest.
pub fn merge_styles(current: Option<&Value>, update: &Value) -> Value {
    let mut out = current
        .cloned()
        .unwrap_or_else(|| serde_json::json!({"chat": null, "centerStage": null}));
    for part in ["chat", "centerStage"] {
        let Some(new) = update.get(part).and_then(Value::as_object) else {
            continue;
        };
        let slot = &mut out[part];
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Some(obj) = slot.as_object_mut() {
            for (k, v) in new {
                if v.is_null() {
                    obj.remove(k);
                } else {
                    obj.insert(k.clone(), v.clone());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_follow_the_contracts_pattern() {
        for ok in ["a@b.co", "first.last+tag@mail.example.com", "x_y@d-e.org"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "a@b",
            "a@b.c",
            "@b.co",
            "a..b@c.co",
            "a@b.c-o",
            "a b@c.co",
            "a@@b.co",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn every_bad_voice_field_is_named() {
        let mut e = FieldErrors::new();
        check_voice(
            &json!({"voice": {"voiceName": "Nobody", "speed": 2}, "temperature": 3,
                    "recordings": {"enabled": true}, "extra": 1}),
            &mut e,
        );
        let keys: Vec<_> = e.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "voiceSettings.extra",
                "voiceSettings.recordings.retentionDays",
                "voiceSettings.temperature",
                "voiceSettings.voice.speed",
                "voiceSettings.voice.voiceName"
            ]
        );
    }

    #[test]
    fn channel_instructions_pick_the_chat_text() {
        let v = json!({"api": "Be terse.", "chat_widget": {"chat": "Be warm.", "voice": "Slow."}});
        let mut e = FieldErrors::new();
        check_channel_instructions(&v, &mut e);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(channel_chat_instructions(&v, "api"), Some("Be terse."));
        assert_eq!(
            channel_chat_instructions(&v, "chat_widget"),
            Some("Be warm.")
        );
        assert_eq!(channel_chat_instructions(&v, "slack"), None);
        check_channel_instructions(&json!({"fax": "x"}), &mut e);
        assert!(e.contains_key("channelInstructions.fax"));
    }

    #[test]
    fn styles_merge_key_by_key() {
        let current =
            json!({"chat": {"headerColor": "#111111", "theme": "dark"}, "centerStage": null});
        let merged = merge_styles(
            Some(&current),
            &json!({"chat": {"headerColor": "#222", "theme": null}}),
        );
        assert_eq!(
            merged,
            json!({"chat": {"headerColor": "#222"}, "centerStage": null})
        );
    }
}
