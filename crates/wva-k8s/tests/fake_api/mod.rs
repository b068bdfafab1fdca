//! A small in-process fake of the Kubernetes API for the wiring tests: LIST (with a
//! resourceVersion), WATCH (streamed JSON lines) and `metadata.name` field selectors over
//! collections keyed by path; POSTs are recorded and echoed; anything else answers 404 (or
//! 500 for paths registered as failing). Every request is recorded for assertions.

#![allow(clippy::unwrap_used)] // Test helper: a failed unwrap is a failed test.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc::{UnboundedSender, unbounded};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use serde_json::{Value, json};

/// One request the fake served.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path without the query.
    pub path: String,
    /// Decoded query pairs (empty pairs skipped).
    pub query: Vec<(String, String)>,
    /// JSON body, if any.
    pub body: Option<Value>,
}

#[derive(Default)]
struct Collection {
    items: Vec<Value>,
    watchers: Vec<(Option<String>, UnboundedSender<Bytes>)>,
}

#[derive(Default)]
struct State {
    rv: u64,
    collections: HashMap<String, Collection>,
    failing: Vec<String>,
    recorded: Vec<Recorded>,
}

/// The fake API server; cheap to clone.
#[derive(Clone, Default)]
pub struct FakeApi {
    state: Arc<Mutex<State>>,
}

fn name_of(obj: &Value) -> Option<String> {
    obj["metadata"]["name"].as_str().map(str::to_owned)
}

/// Percent-decodes a query component (`+` is a space).
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

type Body = BoxBody<Bytes, Infallible>;

fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())).boxed())
        .unwrap()
}

impl FakeApi {
    /// Adds (or replaces) an object in the collection at `path`, as initial state.
    pub fn seed(&self, path: &str, mut obj: Value) {
        let mut state = self.state.lock().unwrap();
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        let collection = state.collections.entry(path.to_owned()).or_default();
        collection.items.retain(|o| name_of(o) != name_of(&obj));
        collection.items.push(obj);
    }

    /// Makes every request under `prefix` fail with 500.
    pub fn fail(&self, prefix: &str) {
        self.state.lock().unwrap().failing.push(prefix.to_owned());
    }

    /// Applies a change to the collection at `path` and streams it to its watchers.
    /// `kind` is `ADDED`, `MODIFIED` or `DELETED`.
    pub fn push(&self, path: &str, kind: &str, mut obj: Value) {
        let mut state = self.state.lock().unwrap();
        state.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(state.rv.to_string());
        let collection = state.collections.entry(path.to_owned()).or_default();
        collection.items.retain(|o| name_of(o) != name_of(&obj));
        if kind != "DELETED" {
            collection.items.push(obj.clone());
        }
        let line = format!("{}\n", json!({"type": kind, "object": obj}));
        collection.watchers.retain(|(name, tx)| {
            if name.is_some() && *name != name_of(&obj) {
                return !tx.is_closed();
            }
            tx.unbounded_send(Bytes::from(line.clone())).is_ok()
        });
    }

    /// Number of open watches on `path`.
    pub fn watchers(&self, path: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.collections.get(path).map_or(0, |c| {
            c.watchers.iter().filter(|(_, tx)| !tx.is_closed()).count()
        })
    }

    /// Waits (up to 5 s) until `path` has at least `n` open watches.
    pub async fn wait_for_watchers(&self, path: &str, n: usize) {
        for _ in 0..500 {
            if self.watchers(path) >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no watch on {path}");
    }

    /// Every request served so far.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }

    /// Waits (up to 5 s) for a recorded request matching `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&Recorded) -> bool) -> Recorded {
        for _ in 0..500 {
            if let Some(r) = self.recorded().into_iter().find(|r| pred(r)) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected request never came; got {:#?}", self.recorded());
    }

    /// A kube client served by this fake.
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) =
            tower_test::mock::pair::<Request<kube::client::Body>, Response<Body>>();
        let api = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = api.serve(request).await;
                send.send_response(response);
            }
        });
        kube::Client::new(service, "default")
    }

    async fn serve(&self, request: Request<kube::client::Body>) -> Response<Body> {
        let method = request.method().as_str().to_owned();
        let path = request.uri().path().to_owned();
        let query = parse_query(request.uri().query());
        let bytes = request.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice::<Value>(&bytes).ok();
        let mut state = self.state.lock().unwrap();
        state.recorded.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            body: body.clone(),
        });
        if state.failing.iter().any(|p| path.starts_with(p.as_str())) {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "boom", "reason": "InternalError", "code": 500}),
            );
        }
        let param = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let name_filter = param("fieldSelector")
            .and_then(|f| f.strip_prefix("metadata.name=").map(str::to_owned));
        match method.as_str() {
            "GET" if param("watch").as_deref() == Some("true") => {
                let (tx, rx) = unbounded::<Bytes>();
                state
                    .collections
                    .entry(path)
                    .or_default()
                    .watchers
                    .push((name_filter, tx));
                // Each line becomes one data frame (a `Full` body's single frame).
                let stream = rx.flat_map(|line| BodyStream::new(Full::new(line)));
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", "application/json")
                    .body(BodyExt::boxed(StreamBody::new(stream)))
                    .unwrap()
            }
            "GET" if state.collections.contains_key(&path) || path.ends_with('s') => {
                let rv = state.rv.to_string();
                let items: Vec<Value> = state
                    .collections
                    .get(&path)
                    .map(|c| c.items.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|o| name_filter.is_none() || name_of(o) == name_filter)
                    .collect();
                json_response(
                    StatusCode::OK,
                    &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": rv}, "items": items}),
                )
            }
            "POST" => json_response(StatusCode::CREATED, &body.unwrap_or(Value::Null)),
            _ => json_response(
                StatusCode::NOT_FOUND,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "not found", "reason": "NotFound", "code": 404}),
            ),
        }
    }
}
