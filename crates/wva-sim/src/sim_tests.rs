use super::*;
use crate::config::FleetConfig;
use proptest::prelude::*;
use std::time::Duration;

pub(crate) const MODEL: &str = "meta-llama/Llama-3.1-8B-Instruct";

pub(crate) fn config(rate: f64) -> FleetConfig {
    FleetConfig::from_yaml_str(&format!(
        "
seed: 7
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

fn run_for(sim: &mut Simulation, secs: f64) {
    let ticks = (secs * 1e6 / sim.tick_us() as f64).round() as u64;
    for _ in 0..ticks {
        sim.tick();
    }
}

fn states(sim: &Simulation, variant: &str) -> Vec<(String, PodState)> {
    sim.snapshot()
        .pods
        .into_iter()
        .filter(|p| p.variant == variant)
        .map(|p| (p.name, p.state))
        .collect()
}

#[test]
fn pods_become_ready_exactly_at_created_plus_delay_rounded_up_to_a_tick() {
    let mut cfg = config(0.0);
    cfg.startup_delay = Duration::from_millis(1250);
    let mut sim = Simulation::new(cfg).unwrap();
    assert_eq!(
        sim.counts("cheap").unwrap().ready,
        2,
        "configured replicas are Ready at start"
    );
    run_for(&mut sim, 1.0);
    sim.set_replicas("cheap", 4).unwrap(); // created at 1.0 s, ready at 2.25 s -> 2.3 s
    assert_eq!(sim.counts("cheap").unwrap().starting, 2);
    run_for(&mut sim, 1.3);
    assert_eq!(sim.counts("cheap").unwrap().ready, 2);
    sim.tick(); // tick starting at 2.3 s
    let c = sim.counts("cheap").unwrap();
    assert_eq!((c.ready, c.starting, c.current), (4, 0, 4));
    let ready = sim
        .events_since(0)
        .iter()
        .rfind(|e| e.kind == EventKind::PodReady)
        .unwrap();
    assert!((ready.t - 2.3).abs() < 1e-9, "{}", ready.t);
}

#[test]
fn pod_names_follow_kubernetes_and_are_never_reused() {
    let mut sim = Simulation::new(config(0.0)).unwrap();
    let mut seen = HashSet::new();
    for round in 0..20 {
        sim.set_replicas("cheap", if round % 2 == 0 { 5 } else { 0 })
            .unwrap();
        run_for(&mut sim, 5.0);
        for (name, _) in states(&sim, "cheap") {
            let parts: Vec<&str> = name.rsplitn(3, '-').collect();
            assert_eq!(parts[0].len(), 5, "{name}");
            assert_eq!(parts[1].len(), 10, "{name}");
            assert!(parts[2] == "cheap-decode", "{name}");
            seen.insert(name);
        }
    }
    let created = sim
        .events_since(0)
        .iter()
        .filter(|e| e.kind == EventKind::PodCreated && e.variant.as_deref() == Some("cheap"))
        .count();
    let unique: HashSet<_> = sim
        .events_since(0)
        .iter()
        .filter(|e| e.kind == EventKind::PodCreated)
        .filter_map(|e| e.pod.clone())
        .collect();
    assert_eq!(
        unique.len(),
        sim.events_since(0)
            .iter()
            .filter(|e| e.kind == EventKind::PodCreated)
            .count()
    );
    assert!(created > 20);
}

#[test]
fn scale_down_removes_starting_pods_first_then_the_newest_ready() {
    let mut sim = Simulation::new(config(0.0)).unwrap();
    run_for(&mut sim, 3.0);
    let old: Vec<String> = states(&sim, "cheap").into_iter().map(|p| p.0).collect();
    run_for(&mut sim, 1.0);
    sim.set_replicas("cheap", 3).unwrap(); // one newer Ready pod
    run_for(&mut sim, 3.0);
    sim.set_replicas("cheap", 4).unwrap(); // one Starting pod
    let all = states(&sim, "cheap");
    let starting: Vec<_> = all
        .iter()
        .filter(|p| p.1 == PodState::Starting)
        .map(|p| p.0.clone())
        .collect();
    let newest_ready: Vec<_> = all
        .iter()
        .filter(|p| p.1 == PodState::Ready && !old.contains(&p.0))
        .map(|p| p.0.clone())
        .collect();
    assert_eq!((starting.len(), newest_ready.len()), (1, 1));
    let c = sim.set_replicas("cheap", 2).unwrap();
    assert_eq!((c.current, c.draining), (2, 1));
    let after = states(&sim, "cheap");
    assert!(
        !after.iter().any(|p| p.0 == starting[0]),
        "starting pod removed at once"
    );
    assert!(
        after
            .iter()
            .any(|p| p.0 == newest_ready[0] && p.1 == PodState::Draining)
    );
    for o in &old {
        assert!(after.iter().any(|p| &p.0 == o && p.1 == PodState::Ready));
    }
}

#[test]
fn drain_completes_or_aborts_at_grace() {
    // Long requests that cannot finish within the 3 s grace.
    let mut cfg = config(20.0);
    cfg.models[0].output_tokens = Some(crate::dist::SizeDist::Constant { value: 1000 });
    let mut sim = Simulation::new(cfg).unwrap();
    run_for(&mut sim, 6.0);
    sim.set_replicas("cheap", 1).unwrap();
    let draining = states(&sim, "cheap")
        .into_iter()
        .find(|p| p.1 == PodState::Draining)
        .unwrap()
        .0;
    let t_drain = sim.now_us();
    run_for(&mut sim, 2.9);
    assert!(
        states(&sim, "cheap").iter().any(|p| p.0 == draining),
        "still draining before grace"
    );
    run_for(&mut sim, 0.2);
    assert!(!states(&sim, "cheap").iter().any(|p| p.0 == draining));
    let term = sim
        .events_since(0)
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::PodTerminated && e.pod.as_deref() == Some(&draining))
        .unwrap();
    assert_eq!(term.values["reason"], "grace_expired");
    assert!(term.values["aborted"].as_u64().unwrap() > 0);
    assert!((term.t - (t_drain as f64 / 1e6 + 3.0)).abs() <= 0.1 + 1e-9);
    assert!(sim.model_status()[0].totals.aborted > 0);
    // A quiet pod drains at once.
    let mut sim = Simulation::new(config(0.0)).unwrap();
    run_for(&mut sim, 3.0);
    sim.set_replicas("cheap", 1).unwrap();
    sim.tick();
    assert_eq!(sim.counts("cheap").unwrap().draining, 0);
}

#[test]
fn kill_creates_a_replacement_with_a_fresh_name() {
    let mut sim = Simulation::new(config(1.0)).unwrap();
    run_for(&mut sim, 3.0);
    let victim = sim.nth_pod("cheap", 0).unwrap();
    sim.kill(&victim).unwrap();
    let c = sim.counts("cheap").unwrap();
    assert_eq!((c.ready, c.starting), (1, 1));
    assert!(!states(&sim, "cheap").iter().any(|p| p.0 == victim));
    assert_eq!(sim.kill(&victim), Err(SimError::UnknownPod(victim.clone())));
    // Killing a draining pod does not replace it.
    sim.set_replicas("fast", 0).unwrap();
    let d = states(&sim, "fast")[0].0.clone();
    sim.kill(&d).unwrap();
    assert_eq!(sim.counts("fast").unwrap().current, 0);
}

#[test]
fn no_ready_replica_queues_in_the_gateway_then_flushes() {
    let mut cfg = config(5.0);
    cfg.startup_delay = Duration::from_secs(2);
    for v in &mut cfg.variants {
        v.replicas = 0;
    }
    let mut sim = Simulation::new(cfg).unwrap();
    sim.set_replicas("cheap", 1).unwrap();
    run_for(&mut sim, 1.5);
    assert!(sim.model_status()[0].gateway_queue > 0);
    run_for(&mut sim, 1.0);
    assert_eq!(sim.model_status()[0].gateway_queue, 0);
}

#[test]
fn gateway_queue_times_out() {
    let mut cfg = config(5.0);
    cfg.gateway.queue_timeout = Duration::from_secs(1);
    for v in &mut cfg.variants {
        v.replicas = 0;
    }
    let mut sim = Simulation::new(cfg).unwrap();
    run_for(&mut sim, 5.0);
    assert!(sim.model_status()[0].totals.gateway_timeout > 0);
}

#[test]
fn set_replicas_bounds_and_unknown_names() {
    let mut sim = Simulation::new(config(0.0)).unwrap();
    assert!(matches!(
        sim.set_replicas("cheap", 10_001),
        Err(SimError::TooManyReplicas { .. })
    ));
    assert_eq!(
        sim.set_replicas("nope", 1),
        Err(SimError::UnknownVariant("nope".into()))
    );
    assert_eq!(
        sim.set_replicas("cheap", 3).unwrap(),
        sim.set_replicas("cheap", 3).unwrap()
    );
}

fn run_scripted(seed: u64) -> (Vec<String>, String) {
    let mut cfg = config(12.0);
    cfg.seed = seed;
    let mut sim = Simulation::new(cfg).unwrap();
    let mut digests = Vec::new();
    for k in 0..300 {
        if k == 50 {
            sim.set_replicas("cheap", 4).unwrap();
        }
        if k == 120 {
            let p = sim.nth_pod("cheap", 1).unwrap();
            sim.kill(&p).unwrap();
        }
        if k == 200 {
            sim.set_load(MODEL, LoadProfile::Constant { rate: 2.0 })
                .unwrap();
            sim.set_replicas("fast", 0).unwrap();
        }
        sim.tick();
        if k % 10 == 0 {
            digests.push(sim.digest());
        }
    }
    let log: Vec<String> = sim
        .events_since(0)
        .iter()
        .map(Event::deterministic_line)
        .collect();
    (digests, log.join("\n"))
}

#[test]
fn same_seed_and_commands_give_identical_metrics_and_events() {
    let a = run_scripted(42);
    let b = run_scripted(42);
    assert_eq!(a, b);
    let c = run_scripted(43);
    assert_ne!(a.0.last(), c.0.last());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn requests_are_conserved_and_counters_never_decrease(
        seed in 0u64..500,
        rate in 0.0f64..40.0,
        cmds in proptest::collection::vec((0u64..60, 0u8..3, 0u32..5), 0..8),
    ) {
        let mut cfg = config(rate);
        cfg.seed = seed;
        cfg.termination_grace = Duration::from_secs(1);
        let mut sim = Simulation::new(cfg).unwrap();
        let mut last: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for k in 0..60u64 {
            for (at, what, n) in &cmds {
                if *at == k {
                    match what {
                        0 => { sim.set_replicas("cheap", u64::from(*n)).unwrap(); }
                        1 => { sim.set_replicas("fast", u64::from(*n)).unwrap(); }
                        _ => if let Some(p) = sim.nth_pod("cheap", *n as usize) { sim.kill(&p).unwrap(); },
                    }
                }
            }
            sim.tick();
            let t = sim.model_status()[0].totals;
            prop_assert_eq!(
                t.arrivals,
                t.completed + t.aborted + t.rejected + t.gateway_timeout + t.lost + t.errored + sim.in_flight(0)
            );
            for (name, p) in sim.publish() {
                let m = &p.metrics;
                prop_assert!((0.0..=1.0).contains(&m.kv_usage));
                let cur = (m.generation_tokens, m.e2e.count());
                if let Some(prev) = last.get(&name) {
                    prop_assert!(cur.0 >= prev.0 && cur.1 >= prev.1);
                }
                last.insert(name, cur);
            }
        }
    }
}

#[test]
fn scheduled_events_apply_at_their_tick() {
    let mut cfg = config(2.0);
    cfg.events = vec![
        ScheduledEvent {
            at: Duration::from_secs(5),
            action: Action::Resize {
                variant: "cheap".into(),
                replicas: 4,
            },
        },
        ScheduledEvent {
            at: Duration::from_secs(6),
            action: Action::SetLoad {
                model: MODEL.into(),
                profile: LoadProfile::Constant { rate: 7.0 },
            },
        },
        ScheduledEvent {
            at: Duration::from_secs(8),
            action: Action::KillPod {
                variant: "fast".into(),
                index: 0,
            },
        },
    ];
    let mut sim = Simulation::new(cfg).unwrap();
    run_for(&mut sim, 5.0);
    assert_eq!(sim.counts("cheap").unwrap().spec_replicas, 2);
    sim.tick();
    assert_eq!(sim.counts("cheap").unwrap().spec_replicas, 4);
    run_for(&mut sim, 1.0);
    assert_eq!(sim.load()[MODEL], 7.0);
    run_for(&mut sim, 2.0);
    let killed = sim
        .events_since(0)
        .iter()
        .find(|e| e.kind == EventKind::PodKilled)
        .unwrap();
    assert!((killed.t - 8.0).abs() < 1e-9);
}

#[test]
fn a_trace_replays_its_timestamps_through_the_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.csv");
    std::fs::write(
        &path,
        "timestamp_s,prompt_tokens,output_tokens\n3.0,100,5\n3.25,200,6\n4.5,300,7\n",
    )
    .unwrap();
    let mut cfg = config(0.0);
    cfg.models[0].load = LoadProfile::Trace {
        path,
        time_scale: 1.0,
        looped: false,
    };
    let mut sim = Simulation::new(cfg).unwrap();
    sim.keep_records(true);
    run_for(&mut sim, 10.0);
    let mut got: Vec<(u64, u32, u32)> = sim
        .take_records()
        .iter()
        .map(|r| {
            (
                r.gateway_arrival_us,
                r.record.prompt_tokens,
                r.record.output_tokens,
            )
        })
        .collect();
    got.sort_unstable();
    assert_eq!(
        got,
        vec![
            (3_000_000, 100, 5),
            (3_250_000, 200, 6),
            (4_500_000, 300, 7)
        ]
    );
}

#[test]
fn flow_control_holds_requests_while_every_replica_is_saturated() {
    let mut cfg = config(200.0);
    cfg.gateway.flow_control = true;
    cfg.gateway.queue_timeout = Duration::from_secs(600);
    let mut sim = Simulation::new(cfg).unwrap();
    run_for(&mut sim, 20.0);
    assert!(sim.model_status()[0].gateway_queue > 0);
    let (_, n, bytes) = sim.gateway_queues()[0].clone();
    assert!(n > 0 && bytes > 0);
    let snap = sim.snapshot();
    for p in snap.pods.iter().filter(|p| p.state == PodState::Ready) {
        assert!(
            p.waiting + 1 >= 5 || p.kv >= 0.75,
            "{p:?} is not saturated but the gateway holds requests"
        );
    }
}
