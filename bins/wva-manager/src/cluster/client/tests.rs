use std::collections::BTreeMap;
use std::time::Duration;

use kube::client::Body;

use super::*;

/// A configuration loaded from these flags and an empty environment.
fn config_with(flags: &[(&str, &str)]) -> ManagerConfig {
    let flags: BTreeMap<String, String> = flags
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let env = BTreeMap::new();
    wva_k8s::config::load(wva_k8s::config::RawConfig {
        flags: &flags,
        env: &env,
        file: None,
    })
    .unwrap()
    .config
}

const KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:6443
    insecure-skip-tls-verify: true
users:
- name: tester
  user:
    token: not-a-real-token
contexts:
- name: test
  context:
    cluster: test
    user: tester
    namespace: team-a
current-context: test
"#;

#[tokio::test]
async fn kubeconfig_file_gives_its_server_namespace_and_the_rest_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, KUBECONFIG).unwrap();
    let config = config_with(&[
        ("kubeconfig", path.to_str().unwrap()),
        ("rest-client-timeout", "7s"),
    ]);
    let kube_config = client_config(&config).await.unwrap();
    assert_eq!(
        kube_config.cluster_url.to_string(),
        "https://127.0.0.1:6443/"
    );
    assert_eq!(kube_config.default_namespace, "team-a");
    assert_eq!(kube_config.read_timeout, Some(Duration::from_secs(7)));
    assert_eq!(kube_config.write_timeout, Some(Duration::from_secs(7)));
    let client = build_client(&config).await.unwrap();
    assert_eq!(client.default_namespace(), "team-a");
}

#[tokio::test]
async fn unreadable_kubeconfig_is_a_client_build_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent");
    let config = config_with(&[("kubeconfig", path.to_str().unwrap())]);
    let Err(err) = build_client(&config).await else {
        panic!("a missing kubeconfig must fail");
    };
    assert!(matches!(err, ClientError::Kubeconfig { .. }), "{err:?}");
    let prefix = format!(
        "error: cannot build Kubernetes client: kubeconfig {}: ",
        path.display()
    );
    assert!(
        err.startup_line().starts_with(&prefix),
        "{}",
        err.startup_line()
    );
}

/// An API server that answers discovery for the given group/versions with their plurals and
/// 404 otherwise; returns the client and the paths requested, once the client is dropped.
fn discovery_server(
    served: &[(&'static str, &'static [&'static str])],
) -> (kube::Client, tokio::task::JoinHandle<Vec<String>>) {
    let served: BTreeMap<String, Vec<&str>> = served
        .iter()
        .map(|(gv, plurals)| (format!("/apis/{gv}"), plurals.to_vec()))
        .collect();
    let (service, mut handle) =
        tower_test::mock::pair::<http::Request<Body>, http::Response<Body>>();
    let server = tokio::spawn(async move {
        let mut paths = Vec::new();
        while let Some((request, respond)) = handle.next_request().await {
            let path = request.uri().path().to_owned();
            let response = match served.get(&path) {
                Some(plurals) => {
                    let resources: Vec<_> = plurals
                        .iter()
                        .map(|p| {
                            serde_json::json!({
                                "name": p, "singularName": "", "namespaced": true,
                                "kind": "X", "verbs": ["get", "list", "watch"]
                            })
                        })
                        .collect();
                    let body = serde_json::json!({
                        "kind": "APIResourceList", "apiVersion": "v1",
                        "groupVersion": path.trim_start_matches("/apis/"),
                        "resources": resources
                    });
                    http::Response::builder()
                        .status(200)
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap()
                }
                None => {
                    let status = serde_json::json!({
                        "kind": "Status", "apiVersion": "v1", "status": "Failure",
                        "message": "the server could not find the requested resource",
                        "reason": "NotFound", "code": 404
                    });
                    http::Response::builder()
                        .status(404)
                        .body(Body::from(serde_json::to_vec(&status).unwrap()))
                        .unwrap()
                }
            };
            respond.send_response(response);
            paths.push(path);
        }
        paths
    });
    (kube::Client::new(service, "default"), server)
}

#[tokio::test]
async fn crd_check_passes_when_variantautoscalings_are_served() {
    let (client, server) = discovery_server(&[("llmd.ai/v1alpha1", &["variantautoscalings"])]);
    check_crd_served(&client).await.unwrap();
    drop(client);
    assert_eq!(server.await.unwrap(), vec!["/apis/llmd.ai/v1alpha1"]);
}

#[tokio::test]
async fn crd_check_fails_with_the_startup_line_when_the_group_is_missing() {
    let (client, _server) = discovery_server(&[]);
    let err = check_crd_served(&client).await.unwrap_err();
    assert!(matches!(err, ClientError::CrdNotServed), "{err:?}");
    assert_eq!(
        err.startup_line(),
        "error: the API server does not serve llmd.ai/v1alpha1 variantautoscalings; install deploy/crd first"
    );
}

#[tokio::test]
async fn crd_check_fails_when_the_group_lacks_the_plural() {
    let (client, _server) = discovery_server(&[("llmd.ai/v1alpha1", &["somethingelse"])]);
    let err = check_crd_served(&client).await.unwrap_err();
    assert!(matches!(err, ClientError::CrdNotServed), "{err:?}");
}

#[tokio::test]
async fn optional_apis_follow_discovery_and_the_pool_group() {
    let (client, server) = discovery_server(&[
        ("inference.networking.k8s.io/v1", &["inferencepools"]),
        ("autoscaling/v2", &["horizontalpodautoscalers"]),
    ]);
    let config = config_with(&[("pool-group", "inference.networking.k8s.io")]);
    let apis = discover_optional(&client, &config).await;
    assert_eq!(
        apis,
        OptionalApis {
            leader_worker_sets: false,
            inference_pools: true,
            hpas: true,
        }
    );
    drop(client);
    assert_eq!(
        server.await.unwrap(),
        vec![
            "/apis/leaderworkerset.x-k8s.io/v1",
            "/apis/inference.networking.k8s.io/v1",
            "/apis/autoscaling/v2",
        ]
    );
}

#[tokio::test]
async fn default_pool_group_asks_for_the_x_k8s_inference_pool() {
    let (client, server) = discovery_server(&[(
        "inference.networking.x-k8s.io/v1alpha2",
        &["inferencepools"],
    )]);
    let apis = discover_optional(&client, &config_with(&[])).await;
    assert!(apis.inference_pools);
    assert!(!apis.leader_worker_sets && !apis.hpas);
    drop(client);
    assert!(
        server
            .await
            .unwrap()
            .contains(&"/apis/inference.networking.x-k8s.io/v1alpha2".to_owned())
    );
}
