//! Commands that talk to a running server (or chatbase.co) over HTTP through the
//! Rust SDK: interactive chat and conversation listing / export.

use std::io::{BufRead, Write};

use agentbase_client::types::{ChatRequest, UiChunk};
use agentbase_client::{Client, ListParams};
use anyhow::Context;
use clap::{Args, Subcommand};
use futures_util::StreamExt;

#[derive(Args, Clone)]
pub struct Remote {
    /// API root of the server.
    #[arg(
        long,
        global = true,
        env = "AGENTBASE_BASE_URL",
        default_value = "http://127.0.0.1:8080/api/v2"
    )]
    pub base_url: String,
    /// API key (or AGENTBASE_API_KEY).
    #[arg(long, global = true, env = "AGENTBASE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

impl Remote {
    fn client(&self) -> anyhow::Result<Client> {
        let key = self
            .api_key
            .clone()
            .context("an API key is required: --api-key or AGENTBASE_API_KEY")?;
        Ok(Client::new(self.base_url.clone(), Some(key)))
    }
}

#[derive(Subcommand)]
pub enum ConversationCmd {
    /// Conversations of an agent, newest first.
    List {
        agent_id: String,
        #[arg(long)]
        start_date: Option<String>,
        #[arg(long)]
        end_date: Option<String>,
        /// Stop after this many (default: all).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// One conversation with all its messages.
    Show {
        agent_id: String,
        conversation_id: String,
    },
    /// Every conversation with its messages, one JSON object per line.
    Export {
        agent_id: String,
        /// `messages` (default) or `summary`.
        #[arg(long, default_value = "messages")]
        include: String,
    },
}

/// Reads lines from stdin and streams each answer. A tool call is shown and its
/// result read as one line of JSON, then the turn continues.
pub async fn chat(remote: &Remote, agent_id: &str) -> anyhow::Result<()> {
    let client = remote.client()?;
    let stdin = std::io::stdin();
    let mut conversation: Option<String> = None;
    let mut pending_message: Option<String> = None;
    eprintln!("Chatting with {agent_id}. End with Ctrl-D.");
    loop {
        let message = match pending_message.take() {
            Some(m) => Some(m),
            None => {
                eprint!("> ");
                let mut line = String::new();
                if stdin.lock().read_line(&mut line)? == 0 {
                    return Ok(());
                }
                let line = line.trim().to_owned();
                if line.is_empty() {
                    continue;
                }
                Some(line)
            }
        };
        let request = ChatRequest {
            message,
            conversation_id: conversation.clone(),
            ..Default::default()
        };
        let mut stream = client.chat_stream(agent_id, &request).await?;
        let mut calls = Vec::new();
        let mut out = std::io::stdout();
        while let Some(chunk) = stream.next().await {
            match chunk? {
                UiChunk::TextDelta { delta, .. } => {
                    write!(out, "{delta}")?;
                    out.flush()?;
                }
                UiChunk::ToolInputAvailable {
                    tool_call_id,
                    tool_name,
                    input,
                } => {
                    writeln!(out, "\n[tool call {tool_name}({input})]")?;
                    calls.push(tool_call_id);
                }
                UiChunk::Error { error_text } => writeln!(out, "\n[error: {error_text}]")?,
                UiChunk::Finish {
                    message_metadata, ..
                } => {
                    conversation = Some(message_metadata.conversation_id);
                }
                _ => {}
            }
        }
        writeln!(out)?;
        if !calls.is_empty() {
            let c = conversation
                .clone()
                .context("the server sent no conversation id")?;
            for call in calls {
                eprint!("result for {call} (JSON)> ");
                let mut line = String::new();
                stdin.lock().read_line(&mut line)?;
                let output = serde_json::from_str(line.trim())
                    .unwrap_or(serde_json::Value::String(line.trim().to_owned()));
                client
                    .submit_tool_result(agent_id, &c, &call, output)
                    .await?;
            }
            // Continue the turn: a chat call without a message.
            pending_message = None;
            let request = ChatRequest {
                conversation_id: Some(c),
                ..Default::default()
            };
            let r = client.chat(agent_id, &request).await?;
            for p in r.data.parts {
                if let agentbase_client::types::MessagePart::Text { text } = p {
                    writeln!(out, "{text}")?;
                }
            }
        }
    }
}

pub async fn conversations(
    remote: &Remote,
    cmd: ConversationCmd,
    as_json: bool,
) -> anyhow::Result<()> {
    let client = remote.client()?;
    match cmd {
        ConversationCmd::List {
            agent_id,
            start_date,
            end_date,
            limit,
        } => {
            let params = ListParams {
                start_date,
                end_date,
                limit: Some(100),
                ..Default::default()
            };
            let mut stream = client.conversations(&agent_id, params);
            let mut n = 0;
            while let Some(c) = stream.next().await {
                let c = c?;
                if as_json {
                    println!("{}", serde_json::to_string(&c)?);
                } else {
                    println!(
                        "{}\t{}\t{}\t{}",
                        c.id,
                        c.status,
                        c.user_id.as_deref().unwrap_or("-"),
                        c.title.as_deref().unwrap_or("")
                    );
                }
                n += 1;
                if limit.is_some_and(|l| n >= l) {
                    break;
                }
            }
        }
        ConversationCmd::Show {
            agent_id,
            conversation_id,
        } => {
            show_conversation(&client, &agent_id, &conversation_id, as_json).await?;
        }
        ConversationCmd::Export { agent_id, include } => {
            let mut query = format!("include={include}&limit=20");
            loop {
                let page = client.export_conversations(&agent_id, &query).await?;
                for c in &page.data {
                    println!("{}", serde_json::to_string(c)?);
                }
                match (page.pagination.has_more, page.pagination.cursor) {
                    (true, Some(c)) => {
                        query = format!("include={include}&limit=20&cursor={}", encode(&c))
                    }
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

/// `conversations show`: the conversation with every message, oldest first.
async fn show_conversation(
    client: &agentbase_client::Client,
    agent_id: &str,
    conversation_id: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    let first = client.get_conversation(agent_id, conversation_id).await?;
    let mut messages = first.data.messages;
    let mut cursor = first.pagination.cursor;
    while let Some(c) = cursor {
        let page = client
            .list_messages(
                agent_id,
                conversation_id,
                &ListParams {
                    cursor: Some(c),
                    limit: Some(100),
                    ..Default::default()
                },
            )
            .await?;
        let mut older = page.data;
        older.extend(messages);
        messages = older;
        cursor = page.pagination.cursor;
    }
    if as_json {
        let mut v = serde_json::to_value(&first.data.conversation)?;
        v["messages"] = serde_json::to_value(&messages)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for m in messages {
            let text: Vec<String> = m.parts.iter().map(part_text).collect();
            println!("{}: {}", m.role, text.join(" "));
        }
    }
    Ok(())
}

/// A message part as a line of text.
fn part_text(p: &agentbase_client::types::MessagePart) -> String {
    use agentbase_client::types::MessagePart;
    match p {
        MessagePart::Text { text } => text.clone(),
        MessagePart::ToolCall {
            tool_name, input, ..
        } => format!("[tool call {tool_name}({input})]"),
        MessagePart::ToolResult {
            tool_name, output, ..
        } => format!("[tool result {tool_name}: {output}]"),
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
