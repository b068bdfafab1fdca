//! `wva-manager run` configuration from flags, the environment and the config file: the exact
//! start-up error lines and exit code 2 (spec/k8s.md §6.3), and precedence flag > environment >
//! config file > default (§6.1).

#![allow(clippy::unwrap_used)] // test helpers panic on setup failures by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// What a run whose configuration was accepted prints next: the kubeconfig that
/// [`run_accepted`] points at does not exist (exit 1).
const IN_CLUSTER: &str = "error: cannot build Kubernetes client: ";

/// Runs `wva-manager run ARGS` with exactly the environment `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wva-manager"));
    cmd.arg("run").args(args).env_clear();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// Like [`run`], with a Prometheus URL and a missing kubeconfig in the environment, so that a
/// configuration that loads stops at the Kubernetes client with [`IN_CLUSTER`].
fn run_accepted(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut all = vec![
        ("PROMETHEUS_BASE_URL", "http://127.0.0.1:9"),
        ("KUBECONFIG", "/nonexistent/wva-test-kubeconfig"),
    ];
    all.extend_from_slice(env);
    run(args, &all)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first stderr line and the exit code.
fn first_line(out: &Output) -> (String, Option<i32>) {
    let text = stderr(out);
    let line = text.lines().next().unwrap_or_default().to_owned();
    (line, out.status.code())
}

/// A config file in a fresh temporary directory.
fn config_file(dir: &tempfile::TempDir, contents: &str) -> PathBuf {
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, contents).unwrap();
    path
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn invalid_flag_value_names_the_flag_and_exits_2() {
    let out = run(&["--interval", "0s"], &[]);
    assert_eq!(
        first_line(&out),
        (
            "error: invalid value \"0s\" for GLOBAL_OPT_INTERVAL (from flag --interval): expected a positive duration such as 30s or 1m".to_owned(),
            Some(2)
        )
    );
}

#[test]
fn invalid_environment_value_names_the_environment() {
    let out = run(&[], &[("WVA_ACTUATION", "sideways")]);
    assert_eq!(
        first_line(&out),
        (
            "error: invalid value \"sideways\" for WVA_ACTUATION (from environment): expected one of metrics, direct".to_owned(),
            Some(2)
        )
    );
}

#[test]
fn invalid_config_file_value_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(&dir, "POOL_GROUP: gateway.example.com\n");
    let out = run(&["--config-file", text(&file)], &[]);
    assert_eq!(
        first_line(&out),
        (
            format!(
                "error: invalid value \"gateway.example.com\" for POOL_GROUP (from config file {}): expected one of inference.networking.x-k8s.io, inference.networking.k8s.io",
                file.display()
            ),
            Some(2)
        )
    );
}

#[test]
fn config_file_is_found_through_wva_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(&dir, "SCALE_FROM_ZERO_ENGINE_MAX_CONCURRENCY: \"0\"\n");
    let out = run(&[], &[("WVA_CONFIG_FILE", text(&file))]);
    assert_eq!(
        first_line(&out),
        (
            format!(
                "error: invalid value \"0\" for SCALE_FROM_ZERO_ENGINE_MAX_CONCURRENCY (from config file {}): expected an integer greater than 0",
                file.display()
            ),
            Some(2)
        )
    );
}

#[test]
fn flag_beats_environment_beats_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(&dir, "WVA_METRICS_NAMING: from-file\n");
    let path = text(&file);
    let line = |value: &str, source: &str| {
        format!(
            "error: invalid value \"{value}\" for WVA_METRICS_NAMING (from {source}): expected one of inferno, wva, both"
        )
    };
    let all = run(
        &["--config-file", path, "--metrics-naming", "from-flag"],
        &[("WVA_METRICS_NAMING", "from-env")],
    );
    assert_eq!(
        first_line(&all).0,
        line("from-flag", "flag --metrics-naming")
    );
    let env_and_file = run(
        &["--config-file", path],
        &[("WVA_METRICS_NAMING", "from-env")],
    );
    assert_eq!(first_line(&env_and_file).0, line("from-env", "environment"));
    let file_only = run(&["--config-file", path], &[]);
    assert_eq!(
        first_line(&file_only).0,
        line("from-file", &format!("config file {path}"))
    );
}

#[test]
fn valid_higher_source_hides_invalid_lower_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(&dir, "GLOBAL_OPT_INTERVAL: never\nLOG_FORMAT: xml\n");
    let out = run_accepted(
        &["--config-file", text(&file), "--log-format", "json"],
        &[("GLOBAL_OPT_INTERVAL", "1m")],
    );
    let text = stderr(&out);
    assert!(text.contains(IN_CLUSTER), "{text}");
    assert!(!text.contains("invalid value"), "{text}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn old_interval_variable_is_not_read() {
    let out = run_accepted(&[], &[("WVA_INTERVAL", "nonsense")]);
    assert!(stderr(&out).starts_with(IN_CLUSTER), "{}", stderr(&out));
}

#[test]
fn unreadable_config_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.yaml");
    let out = run(&["--config-file", text(&missing)], &[]);
    let (line, code) = first_line(&out);
    assert_eq!(code, Some(2));
    let io = std::fs::read_to_string(&missing).unwrap_err();
    assert_eq!(
        line,
        format!("error: cannot read config file {}: {io}", missing.display())
    );
}

#[test]
fn config_file_that_is_not_a_mapping_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(&dir, "- GLOBAL_OPT_INTERVAL\n- 30s\n");
    let out = run(&["--config-file", text(&file)], &[]);
    assert_eq!(
        first_line(&out),
        (
            format!(
                "error: config file {} is not a YAML mapping of KEY: value",
                file.display()
            ),
            Some(2)
        )
    );
}

#[test]
fn unknown_config_file_key_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(&dir, "NOT_A_KEY: 1\nCONFIG_MAP_NAME: old\n");
    let out = run_accepted(&["--config-file", text(&file)], &[]);
    let text = stderr(&out);
    assert!(
        text.contains(&format!(
            "ignoring unknown configuration key \\\"NOT_A_KEY\\\" in {}",
            file.display()
        )) || text.contains(&format!(
            "ignoring unknown configuration key \"NOT_A_KEY\" in {}",
            file.display()
        )),
        "{text}"
    );
    assert!(!text.contains("CONFIG_MAP_NAME"), "{text}");
    assert!(text.contains(IN_CLUSTER), "{text}");
}

#[test]
fn boolean_flag_without_value_means_true_and_bad_value_is_rejected() {
    let bare = run_accepted(&["--leader-elect", "--limited-mode"], &[]);
    assert!(stderr(&bare).starts_with(IN_CLUSTER), "{}", stderr(&bare));
    let bad = run(&["--scale-to-zero", "maybe"], &[]);
    assert_eq!(
        first_line(&bad),
        (
            "error: invalid value \"maybe\" for WVA_SCALE_TO_ZERO (from flag --scale-to-zero): expected true or false".to_owned(),
            Some(2)
        )
    );
}

#[test]
fn bind_address_and_controller_instance_errors() {
    let bind = run(&["--health-probe-bind-address", "8081"], &[]);
    assert_eq!(
        first_line(&bind),
        (
            "error: invalid value \"8081\" for HEALTH_PROBE_BIND_ADDRESS (from flag --health-probe-bind-address): expected HOST:PORT, :PORT or 0".to_owned(),
            Some(2)
        )
    );
    let instance = run(&[], &[("CONTROLLER_INSTANCE", "-bad-")]);
    assert_eq!(
        first_line(&instance),
        (
            "error: invalid value \"-bad-\" for CONTROLLER_INSTANCE (from environment): expected a label value: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric".to_owned(),
            Some(2)
        )
    );
}

#[test]
fn leader_election_timings_must_be_ordered() {
    let out = run(
        &["--leader-election-renew-deadline", "70s"],
        &[("LEADER_ELECT", "true")],
    );
    assert_eq!(
        first_line(&out),
        (
            "error: invalid value \"70s\" for LEADER_ELECTION_RENEW_DEADLINE (from flag --leader-election-renew-deadline): expected whole seconds with lease duration > renew deadline > retry period > 0".to_owned(),
            Some(2)
        )
    );
}

#[test]
fn static_metrics_auth_needs_a_token_file() {
    let out = run(&["--metrics-auth", "static"], &[]);
    assert_eq!(
        first_line(&out),
        (
            "error: invalid value \"static\" for METRICS_AUTH (from flag --metrics-auth): expected METRICS_AUTH_TOKEN_FILE to be set".to_owned(),
            Some(2)
        )
    );
}

/// A one-variant file for the standalone checks that stop before any cycle.
fn variants(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("variants.yaml");
    std::fs::write(
        &path,
        "apiVersion: llmd.ai/v1alpha1\nkind: VariantAutoscaling\nmetadata:\n  name: v1\n  namespace: team-a\nspec:\n  modelID: org/m\n  scaleTargetRef:\n    kind: Deployment\n    name: v1\n",
    )
    .unwrap();
    path
}

#[test]
fn standalone_without_prometheus_url_prints_the_collector_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = variants(&dir);
    let out = run(&["--standalone", "--variants", text(&file)], &[]);
    assert_eq!(
        first_line(&out),
        (
            "error: prometheus configuration is required but not found. set PROMETHEUS_BASE_URL in config file or environment variable".to_owned(),
            Some(2)
        )
    );
}

#[test]
fn standalone_keys_come_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = variants(&dir);
    let config = config_file(
        &dir,
        &format!(
            "WVA_STANDALONE: true\nWVA_VARIANTS_FILE: {}\nPROMETHEUS_BASE_URL: http://prometheus.example.com:9090\n",
            file.display()
        ),
    );
    let out = run(&["--config-file", text(&config)], &[]);
    let (line, code) = first_line(&out);
    assert_eq!(code, Some(2));
    assert!(
        line.starts_with("error: HTTPS is required - URL must use https:// scheme: http://prometheus.example.com:9090"),
        "{line}"
    );
    // The flag wins over the file's URL.
    let out = run(
        &[
            "--config-file",
            text(&config),
            "--prometheus-url",
            "ftp://[",
        ],
        &[],
    );
    let (line, code) = first_line(&out);
    assert_eq!(code, Some(2));
    assert!(
        line.starts_with("error: PROMETHEUS_BASE_URL=\"ftp://[\" is not a valid URL"),
        "{line}"
    );
}

#[test]
fn standalone_needs_variants() {
    let out = run(&["--standalone"], &[]);
    assert_eq!(
        first_line(&out),
        (
            "error: --standalone needs --variants FILE".to_owned(),
            Some(2)
        )
    );
}
