//! Daily summary mails: a local SMTP server on loopback receives the mail that
//! `notificationsSettings.dailyConversations` asks for, once per day, on any node.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::{outcome, spawn_with};

/// One received mail: the envelope recipients and the DATA text.
#[derive(Debug, Clone, Default)]
struct Mail {
    to: Vec<String>,
    data: String,
}

/// A minimal SMTP server (RFC 5321's commands, no extensions): enough for a real
/// client to deliver to, and it keeps what it was given.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<Mail>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mails = Arc::new(Mutex::new(Vec::new()));
    let kept = mails.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test SMTP ready\r\n").await.unwrap();
                let mut mail = Mail::default();
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 test\r\n"
                    } else if upper.starts_with("RCPT TO:") {
                        mail.to
                            .push(line[8..].trim().trim_matches(['<', '>']).to_owned());
                        b"250 OK\r\n"
                    } else if upper.starts_with("DATA") {
                        write.write_all(b"354 go ahead\r\n").await.unwrap();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            mail.data.push_str(&l);
                            mail.data.push('\n');
                        }
                        kept.lock().unwrap().push(std::mem::take(&mut mail));
                        b"250 queued\r\n"
                    } else if upper.starts_with("QUIT") {
                        write.write_all(b"221 bye\r\n").await.unwrap();
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, mails)
}

#[tokio::test]
async fn the_daily_conversation_summary_is_mailed_once_after_the_day_ends() {
    let (port, mails) = smtp_server().await;
    let t = spawn_with(|s| {
        s.notifications.smtp_url = format!("smtp://127.0.0.1:{port}");
        s.notifications.from = "agentbase <bot@example.com>".into();
        // The test drives the check itself.
        s.notifications.check_interval_secs = 3600;
    })
    .await;
    let agent = t.scripted_agent().await;
    let r = t
        .raw(Method::PUT, &format!("/api/v2/agents/{agent}"))
        .json(&json!({"name": "Support Bot", "notificationsSettings": {
            "dailyLeadsCollected": {"active": false, "emails": []},
            "dailyConversations": {"active": true, "emails": ["ops@example.com", "lead@example.org"]}
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 200);
    // Let the worker's first check (at start) pass before there is anything to send.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    t.say(&agent, None, "Where is my order?").await;
    t.say(&agent, None, "Do you ship abroad?").await;

    // Nothing is due while the day is still going.
    assert_eq!(t.app.notifier().send_daily_summaries().await.unwrap(), 0);
    assert!(mails.lock().unwrap().is_empty());

    t.clock.advance_ms(86_400_000);
    assert_eq!(t.app.notifier().send_daily_summaries().await.unwrap(), 1);
    // Once per day: a second check (or another node) sends nothing more.
    assert_eq!(t.app.notifier().send_daily_summaries().await.unwrap(), 0);
    let got = mails.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    let mut to = got[0].to.clone();
    to.sort();
    assert_eq!(to, ["lead@example.org", "ops@example.com"]);
    let data = &got[0].data;
    assert!(
        data.contains("Subject: Support Bot: 2 new conversations on"),
        "{data}"
    );
    assert!(data.contains("From: agentbase <bot@example.com>"), "{data}");
    assert!(data.contains("New conversations: 2"), "{data}");
    assert!(
        data.contains("Where is my order?") && data.contains("Do you ship abroad?"),
        "{data}"
    );
}

#[tokio::test]
async fn inactive_notifications_and_quiet_days_send_nothing() {
    let (port, mails) = smtp_server().await;
    let t = spawn_with(|s| {
        s.notifications.smtp_url = format!("smtp://127.0.0.1:{port}");
        s.notifications.check_interval_secs = 3600;
    })
    .await;
    let agent = t.scripted_agent().await;
    let quiet = t.scripted_agent().await;
    for (a, active) in [(&agent, false), (&quiet, true)] {
        let r = t
            .raw(Method::PUT, &format!("/api/v2/agents/{a}"))
            .json(&json!({"notificationsSettings": {
                "dailyLeadsCollected": {"active": true, "emails": ["x@example.com"]},
                "dailyConversations": {"active": active, "emails": ["ops@example.com"]}
            }}))
            .send()
            .await
            .unwrap();
        assert_eq!(outcome(r).await.0, 200);
    }
    t.say(&agent, None, "hello").await;
    t.clock.advance_ms(86_400_000);
    assert_eq!(t.app.notifier().send_daily_summaries().await.unwrap(), 0);
    assert!(mails.lock().unwrap().is_empty());
}
