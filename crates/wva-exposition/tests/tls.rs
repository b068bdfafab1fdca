//! TLS on the metrics listener: PEM files, rotation picked up by polling, bad rotations ignored.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::exposition;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;
use wva_exposition::{MetricsNaming, ServerConfig, TlsConfig};

/// Writes a fresh self-signed pair for `localhost` as tls.crt / tls.key; returns the certificate.
fn write_pair(dir: &Path) -> CertificateDer<'static> {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    // Write the key first: the poller reloads once both files changed and parse together.
    std::fs::write(dir.join("tls.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("tls.crt"), cert.pem()).unwrap();
    cert.der().clone()
}

fn connector(trusted: &[&CertificateDer<'static>]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for c in trusted {
        roots.add((*c).clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Every connection makes a full handshake, so it sees the certificate served right now.
    let mut config = config;
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// GET /metrics over TLS: (status line, certificate the server presented).
async fn get_tls(addr: SocketAddr, connector: &TlsConnector) -> (String, CertificateDer<'static>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned();
    tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    (text.lines().next().unwrap().to_owned(), presented)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_over_tls_follow_certificate_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let first = write_pair(dir.path());
    let e = exposition(MetricsNaming::Inferno, None);
    let shutdown = CancellationToken::new();
    let config = ServerConfig {
        metrics: "127.0.0.1:0".parse().unwrap(),
        probes: "127.0.0.1:0".parse().unwrap(),
        tls: Some(TlsConfig {
            cert_dir: Some(dir.path().to_owned()),
            reload_interval: Duration::from_millis(100),
            ..TlsConfig::default()
        }),
        ..ServerConfig::default()
    };
    let servers = e.serve(config, shutdown.clone()).await.unwrap();
    let addr = servers.metrics_addr().unwrap();

    let (status, presented) = get_tls(addr, &connector(&[&first])).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(presented, first);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = common::http::send_raw(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(!plain.starts_with("HTTP/1.1 200"));

    // Rotation: new connections get the new pair.
    let second = write_pair(dir.path());
    let both = connector(&[&first, &second]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, presented) = get_tls(addr, &both).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        if presented == second {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rotated certificate never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken rotation keeps the last good pair.
    std::fs::write(dir.path().join("tls.crt"), "not a certificate").unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, presented) = get_tls(addr, &both).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(presented, second);

    // Probes stay plain HTTP.
    let r = common::http::get(servers.probes_addr().unwrap(), "/healthz").await;
    assert_eq!(r.status, 200);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), servers.wait())
        .await
        .unwrap();
}

#[tokio::test]
async fn unreadable_certificate_fails_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let e = exposition(MetricsNaming::Inferno, None);
    let config = ServerConfig {
        metrics: "127.0.0.1:0".parse().unwrap(),
        probes: "127.0.0.1:0".parse().unwrap(),
        tls: Some(TlsConfig {
            cert_dir: Some(dir.path().to_owned()),
            ..TlsConfig::default()
        }),
        ..ServerConfig::default()
    };
    let err = e.serve(config, CancellationToken::new()).await.unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "cannot load metrics TLS certificate from {}: ",
            dir.path().display()
        )),
        "{err}"
    );
}
