//! Helpers shared by the integration tests: fleet configs and a tiny HTTP/1.1 client.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use wva_sim::FleetConfig;

/// The model of the test fleet.
pub const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";

/// A two-variant fleet (cheap L4 ×2, fast H100 ×1) at a constant rate.
pub fn config(rate: f64, mode: &str) -> FleetConfig {
    FleetConfig::from_yaml_str(&format!(
        "
seed: 11
listen: {{mode: {mode}}}
models:
  - name: {MODEL}
    load: {{type: constant, rate: {rate}}}
variants:
  - {{name: cheap, model: {MODEL}, accelerator: L4, cost: 10, replicas: 2}}
  - {{name: fast, model: {MODEL}, accelerator: H100, cost: 40, replicas: 1}}
"
    ))
    .unwrap()
}

/// A response: status, headers (lower-cased names) and body.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: String,
}

impl Reply {
    /// The first header of that name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.0 == name)
            .map(|h| h.1.as_str())
    }
}

/// One blocking HTTP/1.1 request with `Connection: close`.
pub fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> std::io::Result<Reply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|h| h.0 == "transfer-encoding" && h.1.contains("chunked"));
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Async wrapper running [`request`] on a blocking thread.
pub async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    let (m, p, b) = (method.to_owned(), path.to_owned(), body.to_owned());
    tokio::task::spawn_blocking(move || request(addr, &m, &p, &b))
        .await
        .unwrap()
        .unwrap()
}
