//! The SDK over real TLS: a CA and a server certificate are made here (rcgen), a
//! small HTTPS server on 127.0.0.1 answers `GET /api/v2/agents` with a Chatbase list
//! envelope, and the client reads it when it trusts the CA (through
//! `Client::with_http_client`) and fails with a transport error when it does not.

#![cfg(feature = "rustls")]

use std::net::SocketAddr;
use std::sync::Arc;

use agentbase_client::{Client, Error, reqwest};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A private CA (as PEM, what a user would be handed) and a server config whose
/// certificate it signed for `127.0.0.1`.
fn private_ca() -> (String, ServerConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "agentbase test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().expect("CA key");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf_params.use_authority_key_identifier_extension = true;
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().expect("server key");
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .expect("server certificate");

    let config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .expect("server config");
    (ca.pem(), config)
}

/// One page of the agent list, as the v2 API sends it.
fn agents_page() -> String {
    serde_json::json!({
        "data": [{
            "id": "agent_1",
            "name": "Support",
            "instructions": "Answer from the docs.",
            "channelInstructions": null,
            "model": "gpt-4o-mini",
            "autoRetrain": false,
            "temp": 0.0,
            "visibility": "private",
            "allowedDomains": null,
            "suggestedMessages": null,
            "initialMessages": ["Hi! What can I help with?"],
            "creditLimit": null,
            "creditsUsed": 0,
            "notificationsSettings": null,
            "ipRateLimits": {"limit": 20, "timeframe": 240, "message": "Too many messages"},
            "spamSettings": null,
            "blockedCountries": null,
            "voiceSettings": null,
            "styles": null,
            "createdAt": "2025-01-01T00:00:00.000Z",
            "lastMessageAt": null,
            "lastTrainedAt": null,
            "status": "trained",
            "size": 1024
        }],
        "pagination": {"cursor": null, "hasMore": false, "total": 1}
    })
    .to_string()
}

/// Serves HTTPS on a free port of 127.0.0.1: `GET /api/v2/agents` gets the page,
/// anything else a 404 in the error envelope. A failed handshake ends only its own
/// connection.
async fn serve(config: ServerConfig) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let (status, body) = if head.starts_with(b"GET /api/v2/agents HTTP/1.1\r\n") {
                    ("200 OK", agents_page())
                } else {
                    (
                        "404 Not Found",
                        r#"{"error":{"code":"NOT_FOUND","message":"no such route"}}"#.to_owned(),
                    )
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_client_trusting_the_private_ca_lists_agents_over_https() {
    let (ca_pem, config) = private_ca();
    let addr = serve(config).await;

    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("CA PEM");
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .expect("HTTP client");
    let client =
        Client::new(format!("https://{addr}/api/v2"), Some("key".into())).with_http_client(http);

    let page = client
        .list_agents(None, None)
        .await
        .expect("the agent list");
    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].id, "agent_1");
    assert_eq!(page.data[0].ip_rate_limits.limit, 20);
    assert!(!page.pagination.has_more);
    assert_eq!(page.pagination.total, 1);
}

#[tokio::test]
async fn a_client_without_the_ca_fails_with_a_transport_error_naming_the_certificate() {
    let (_, config) = private_ca();
    let addr = serve(config).await;

    let client = Client::new(format!("https://{addr}/api/v2"), Some("key".into()));
    let err = client
        .list_agents(None, None)
        .await
        .expect_err("an untrusted certificate must not be accepted");

    let Error::Transport(transport) = &err else {
        panic!("expected a transport error, got {err:?}");
    };
    assert!(transport.is_connect(), "not a connect error: {err:?}");
    let mut causes = Vec::new();
    let mut source: Option<&dyn std::error::Error> = Some(transport);
    while let Some(e) = source {
        causes.push(e.to_string());
        source = e.source();
    }
    let causes = causes.join(": ");
    assert!(
        causes.contains("UnknownIssuer"),
        "the causes do not name the untrusted issuer: {causes}"
    );
}
