use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_with(
    flags: &[(&str, &str)],
    env: &[(&str, &str)],
    file: Option<&str>,
) -> Result<Loaded, ConfigErrors> {
    let (flags, env) = (map(flags), map(env));
    let file = file.map(|contents| ConfigFileText {
        path: "/etc/wva/config.yaml",
        contents,
    });
    load(RawConfig {
        flags: &flags,
        env: &env,
        file,
    })
}

fn config(flags: &[(&str, &str)], env: &[(&str, &str)], file: Option<&str>) -> ManagerConfig {
    load_with(flags, env, file).unwrap().config
}

fn first_error(flags: &[(&str, &str)], env: &[(&str, &str)], file: Option<&str>) -> String {
    format!("error: {}", load_with(flags, env, file).unwrap_err())
}

#[test]
fn defaults_match_the_flag_table() {
    let c = config(&[], &[], None);
    assert_eq!(
        c.metrics_bind_address,
        BindAddress::Listen {
            host: "0.0.0.0".into(),
            port: 8080
        }
    );
    assert_eq!(
        c.health_probe_bind_address,
        BindAddress::Listen {
            host: "0.0.0.0".into(),
            port: 8081
        }
    );
    assert!(!c.metrics_secure);
    assert_eq!(
        (c.metrics_cert_name.as_str(), c.metrics_cert_key.as_str()),
        ("tls.crt", "tls.key")
    );
    assert_eq!(c.metrics_auth, MetricsAuth::None);
    assert_eq!(c.metrics_naming, MetricsNaming::Inferno);
    assert_eq!(c.controller_instance, None);
    assert!(!c.leader_elect);
    assert_eq!(c.leader_election_id, "72dd1cf1.llm-d.ai");
    assert_eq!(
        c.lease,
        LeaseTimings {
            lease_duration: Duration::from_secs(60),
            renew_deadline: Duration::from_secs(50),
            retry_period: Duration::from_secs(10)
        }
    );
    assert_eq!(c.interval, Duration::from_secs(30));
    assert_eq!(c.event_debounce, Duration::from_secs(2));
    assert_eq!(c.min_cycle_gap, Duration::from_secs(5));
    assert_eq!(c.actuation, Actuation::Metrics);
    assert!(c.scale_from_zero);
    assert_eq!(c.scale_from_zero_interval, Duration::from_millis(100));
    assert_eq!(c.scale_from_zero_max_concurrency, 10);
    assert!(!c.scale_to_zero && !c.limited_mode && !c.standalone);
    assert_eq!(c.pool_group, PoolGroup::XK8s);
    assert!(c.namespace_overrides);
    assert_eq!(c.rest_client_timeout, Duration::from_secs(60));
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.pod_namespace, "workload-variant-autoscaler-system");
    assert_eq!(c.saturation_config_map, "wva-saturation-scaling-config");
    assert_eq!(c.scale_to_zero_config_map, "wva-model-scale-to-zero-config");
    assert!(c.prometheus.is_empty());
}

#[test]
fn flag_beats_environment_beats_file_beats_default() {
    let file = Some("GLOBAL_OPT_INTERVAL: 10s\nWVA_EVENT_DEBOUNCE: 3s\nWVA_MIN_CYCLE_GAP: 7s\n");
    let env = [("GLOBAL_OPT_INTERVAL", "20s"), ("WVA_EVENT_DEBOUNCE", "4s")];
    let c = config(&[("interval", "1m")], &env, file);
    assert_eq!(c.interval, Duration::from_secs(60));
    assert_eq!(c.event_debounce, Duration::from_secs(4));
    assert_eq!(c.min_cycle_gap, Duration::from_secs(7));
    assert_eq!(c.rest_client_timeout, Duration::from_secs(60));
}

#[test]
fn upstream_config_yaml_loads_as_is() {
    let file = "PROMETHEUS_BASE_URL: https://prometheus:9090\nPROMETHEUS_TLS_INSECURE_SKIP_VERIFY: true\nGLOBAL_OPT_INTERVAL: 60s\nCONFIG_MAP_NAME: old\n";
    let loaded = load_with(&[], &[], Some(file)).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.config.interval, Duration::from_secs(60));
    assert_eq!(
        loaded.config.prometheus,
        map(&[
            ("PROMETHEUS_BASE_URL", "https://prometheus:9090"),
            ("PROMETHEUS_TLS_INSECURE_SKIP_VERIFY", "true")
        ])
    );
}

#[test]
fn unknown_file_keys_warn_and_are_ignored() {
    let loaded = load_with(&[], &[], Some("SOMETHING_ELSE: 1\nPOD_NAMESPACE: x\n")).unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "ignoring unknown configuration key \"POD_NAMESPACE\" in /etc/wva/config.yaml",
            "ignoring unknown configuration key \"SOMETHING_ELSE\" in /etc/wva/config.yaml",
        ]
    );
    assert_eq!(loaded.config.pod_namespace, DEFAULT_POD_NAMESPACE);
}

#[test]
fn prometheus_keys_merge_with_the_same_precedence() {
    let file = Some("PROMETHEUS_BASE_URL: https://file:9090\nPROMETHEUS_QUERY_TIMEOUT: 5s\n");
    let env = [
        ("PROMETHEUS_BASE_URL", "https://env:9090"),
        ("PROMETHEUS_PORT", "tcp://10.0.0.1:9090"),
    ];
    let c = config(&[], &env, file);
    assert_eq!(
        c.prometheus,
        map(&[
            ("PROMETHEUS_BASE_URL", "https://env:9090"),
            ("PROMETHEUS_QUERY_TIMEOUT", "5s")
        ])
    );
    let c = config(&[("prometheus-url", "https://flag:9090")], &env, file);
    assert_eq!(c.prometheus["PROMETHEUS_BASE_URL"], "https://flag:9090");
}

#[test]
fn invalid_duration_names_key_value_and_source() {
    assert_eq!(
        first_error(&[("interval", "soon")], &[], None),
        "error: invalid value \"soon\" for GLOBAL_OPT_INTERVAL (from flag --interval): expected a positive duration such as 30s or 1m"
    );
    assert_eq!(
        first_error(&[], &[("WVA_EVENT_DEBOUNCE", "0s")], None),
        "error: invalid value \"0s\" for WVA_EVENT_DEBOUNCE (from environment): expected a positive duration such as 30s or 1m"
    );
    assert_eq!(
        first_error(&[], &[], Some("REST_CLIENT_TIMEOUT: -1s\n")),
        "error: invalid value \"-1s\" for REST_CLIENT_TIMEOUT (from config file /etc/wva/config.yaml): expected a positive duration such as 30s or 1m"
    );
}

#[test]
fn invalid_boolean() {
    assert_eq!(
        first_error(&[], &[("LEADER_ELECT", "yes")], None),
        "error: invalid value \"yes\" for LEADER_ELECT (from environment): expected true or false"
    );
}

#[test]
fn yaml_booleans_in_the_file_are_accepted() {
    assert!(config(&[], &[], Some("LEADER_ELECT: true\n")).leader_elect);
}

#[test]
fn lease_timings_must_be_whole_ordered_seconds() {
    let allowed = "expected whole seconds with lease duration > renew deadline > retry period > 0";
    assert_eq!(
        first_error(&[("leader-election-lease-duration", "1.5s")], &[], None),
        format!(
            "error: invalid value \"1.5s\" for LEADER_ELECTION_LEASE_DURATION (from flag --leader-election-lease-duration): {allowed}"
        )
    );
    assert_eq!(
        first_error(&[], &[("LEADER_ELECTION_RENEW_DEADLINE", "60s")], None),
        format!(
            "error: invalid value \"60s\" for LEADER_ELECTION_RENEW_DEADLINE (from environment): {allowed}"
        )
    );
    assert_eq!(
        first_error(&[], &[("LEADER_ELECTION_RETRY_PERIOD", "50s")], None),
        format!(
            "error: invalid value \"50s\" for LEADER_ELECTION_RETRY_PERIOD (from environment): {allowed}"
        )
    );
}

#[test]
fn leader_election_id_must_be_a_dns_subdomain() {
    assert_eq!(
        first_error(&[("leader-election-id", "Not_Valid")], &[], None),
        "error: invalid value \"Not_Valid\" for LEADER_ELECTION_ID (from flag --leader-election-id): expected a DNS-1123 subdomain"
    );
}

#[test]
fn controller_instance_must_be_a_label_value() {
    assert_eq!(
        first_error(&[], &[("CONTROLLER_INSTANCE", "team a")], None),
        "error: invalid value \"team a\" for CONTROLLER_INSTANCE (from environment): expected a label value: at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric"
    );
    assert_eq!(
        config(&[], &[("CONTROLLER_INSTANCE", "team-a")], None)
            .controller_instance
            .as_deref(),
        Some("team-a")
    );
}

#[test]
fn bind_address_errors() {
    assert_eq!(
        first_error(&[("metrics-bind-address", "8080")], &[], None),
        "error: invalid value \"8080\" for METRICS_BIND_ADDRESS (from flag --metrics-bind-address): expected HOST:PORT, :PORT or 0"
    );
    assert_eq!(
        config(&[("health-probe-bind-address", "0")], &[], None).health_probe_bind_address,
        BindAddress::Disabled
    );
}

#[test]
fn word_choices_list_what_is_allowed() {
    let cases = [
        ("WVA_ACTUATION", "auto", "expected one of metrics, direct"),
        (
            "WVA_METRICS_NAMING",
            "prom",
            "expected one of inferno, wva, both",
        ),
        (
            "METRICS_AUTH",
            "basic",
            "expected one of none, kubernetes, static",
        ),
        ("LOG_FORMAT", "xml", "expected one of text, json"),
        (
            "POOL_GROUP",
            "x",
            "expected one of inference.networking.x-k8s.io, inference.networking.k8s.io",
        ),
        (
            "SCALE_FROM_ZERO_ENGINE_MAX_CONCURRENCY",
            "0",
            "expected an integer greater than 0",
        ),
    ];
    for (key, value, allowed) in cases {
        assert_eq!(
            first_error(&[], &[(key, value)], None),
            format!("error: invalid value \"{value}\" for {key} (from environment): {allowed}")
        );
    }
}

#[test]
fn static_metrics_auth_needs_a_token_file() {
    assert_eq!(
        first_error(&[("metrics-auth", "static")], &[], None),
        "error: invalid value \"static\" for METRICS_AUTH (from flag --metrics-auth): expected METRICS_AUTH_TOKEN_FILE to be set"
    );
    let c = config(
        &[
            ("metrics-auth", "static"),
            ("metrics-auth-token-file", "/t"),
        ],
        &[],
        None,
    );
    assert_eq!(c.metrics_auth, MetricsAuth::Static);
}

#[test]
fn secure_metrics_default_to_kubernetes_auth() {
    assert_eq!(
        config(&[("metrics-secure", "true")], &[], None).metrics_auth,
        MetricsAuth::Kubernetes
    );
    assert_eq!(
        config(
            &[("metrics-secure", "true"), ("metrics-auth", "none")],
            &[],
            None
        )
        .metrics_auth,
        MetricsAuth::None
    );
}

#[test]
fn all_errors_are_collected_in_key_order() {
    let errors = load_with(
        &[],
        &[
            ("LOG_FORMAT", "xml"),
            ("GLOBAL_OPT_INTERVAL", "x"),
            ("LEADER_ELECT", "y"),
        ],
        None,
    )
    .unwrap_err();
    let keys: Vec<&str> = errors
        .0
        .iter()
        .map(|e| match e {
            ConfigError::InvalidValue { key, .. } => *key,
            _ => "",
        })
        .collect();
    assert_eq!(keys, ["LEADER_ELECT", "GLOBAL_OPT_INTERVAL", "LOG_FORMAT"]);
    let first = load_with(
        &[
            ("leader-election-lease-duration", "x"),
            ("metrics-bind-address", "x"),
        ],
        &[],
        None,
    )
    .unwrap_err();
    assert!(
        first.to_string().contains("for METRICS_BIND_ADDRESS"),
        "{first}"
    );
}

#[test]
fn config_file_that_is_not_a_flat_mapping_is_rejected() {
    for text in [
        "- a\n- b\n",
        "GLOBAL_OPT_INTERVAL: {nested: 1}\n",
        "just text\n",
        "a: [1, 2]\n",
    ] {
        assert_eq!(
            first_error(&[], &[], Some(text)),
            "error: config file /etc/wva/config.yaml is not a YAML mapping of KEY: value",
            "{text}"
        );
    }
    assert!(load_with(&[], &[], Some("")).is_ok());
}

#[test]
fn unreadable_config_file_message() {
    let io = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        "No such file or directory (os error 2)",
    );
    assert_eq!(
        format!(
            "error: {}",
            ConfigError::cannot_read("/etc/wva/config.yaml", &io)
        ),
        "error: cannot read config file /etc/wva/config.yaml: No such file or directory (os error 2)"
    );
}

#[test]
fn config_file_path_comes_from_flag_then_environment() {
    let env = map(&[("WVA_CONFIG_FILE", "/env.yaml")]);
    assert_eq!(
        config_file_path(&map(&[("config-file", "/flag.yaml")]), &env).as_deref(),
        Some("/flag.yaml")
    );
    assert_eq!(
        config_file_path(&BTreeMap::new(), &env).as_deref(),
        Some("/env.yaml")
    );
    assert_eq!(config_file_path(&BTreeMap::new(), &BTreeMap::new()), None);
}

#[test]
fn log_level_falls_back_to_rust_log_then_info() {
    assert_eq!(
        config(&[], &[("RUST_LOG", "debug")], None).log_level,
        "debug"
    );
    assert_eq!(
        config(&[("log-level", "warn")], &[("RUST_LOG", "debug")], None).log_level,
        "warn"
    );
    assert_eq!(
        config(&[], &[("LOG_LEVEL", "wva=trace")], None).log_level,
        "wva=trace"
    );
}

#[test]
fn environment_only_keys_and_secret_redaction() {
    let c = config(
        &[],
        &[
            ("POD_NAMESPACE", "ops"),
            ("HOSTNAME", "host-1"),
            ("EPP_METRIC_READER_BEARER_TOKEN", "s3cret"),
            ("SATURATION_CONFIG_MAP_NAME", "sat"),
        ],
        None,
    );
    assert_eq!(c.pod_namespace, "ops");
    assert_eq!(c.pod_name.as_deref(), Some("host-1"));
    assert_eq!(c.saturation_config_map, "sat");
    assert_eq!(c.epp_bearer_token, Some(Redacted("s3cret".into())));
    assert!(!format!("{c:?}").contains("s3cret"));
    assert_eq!(
        config(&[], &[("POD_NAME", "pod-a"), ("HOSTNAME", "h")], None)
            .pod_name
            .as_deref(),
        Some("pod-a")
    );
}

#[test]
fn empty_values_count_as_not_given() {
    let c = config(
        &[],
        &[("GLOBAL_OPT_INTERVAL", ""), ("CONTROLLER_INSTANCE", "")],
        Some("GLOBAL_OPT_INTERVAL: 45s\n"),
    );
    assert_eq!(c.interval, Duration::from_secs(45));
    assert_eq!(c.controller_instance, None);
}

#[test]
fn unknown_flag_is_an_error() {
    assert_eq!(
        first_error(&[("intervall", "1s")], &[], None),
        "error: unknown flag --intervall"
    );
}

#[test]
fn every_key_has_a_distinct_flag_and_env_name() {
    let mut flags: Vec<_> = KEYS.iter().filter_map(|k| k.flag).collect();
    let mut envs: Vec<_> = KEYS.iter().map(|k| k.env).collect();
    let n = KEYS.len();
    flags.sort_unstable();
    flags.dedup();
    envs.sort_unstable();
    envs.dedup();
    assert_eq!((flags.len(), envs.len()), (n, n));
}
