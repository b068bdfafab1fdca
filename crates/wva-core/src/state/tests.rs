use super::*;

fn ts(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn record(ns: &str, variant: &str, from: LearnedFrom, eff: i64, at: &str) -> CapacityRecord {
    CapacityRecord {
        namespace: ns.into(),
        model_id: "m".into(),
        variant: variant.into(),
        accelerator: "H100".into(),
        gpu_count: 1,
        num_gpu_blocks: 0,
        block_size: 0,
        total_kv_capacity_tokens: 0,
        effective_capacity: eff,
        vllm_params: Some(VllmParams::default()),
        learned_from: from,
        learned_at: ts(at),
    }
}

#[test]
fn capacity_older_than_seven_days_is_evicted() {
    let mut s = CoreState::default();
    s.capacity.insert(record(
        "a",
        "old",
        LearnedFrom::Live,
        1,
        "2026-03-01T00:00:00Z",
    ));
    s.capacity.insert(record(
        "a",
        "edge",
        LearnedFrom::Live,
        1,
        "2026-03-01T00:00:01Z",
    ));
    s.evict(&ts("2026-03-08T00:00:01Z"));
    let names: Vec<_> = s.capacity.records().map(|r| r.variant.as_str()).collect();
    assert_eq!(names, vec!["edge"]);
}

#[test]
fn history_older_than_a_day_is_evicted() {
    let mut s = CoreState::default();
    s.history.push("old", 5, ts("2026-03-01T00:00:00Z"));
    s.history.push("edge", 5, ts("2026-03-01T00:00:01Z"));
    s.evict(&ts("2026-03-02T00:00:01Z"));
    assert_eq!(
        s.history
            .entries()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        vec!["edge"]
    );
}

#[test]
fn history_keeps_the_last_ten_values() {
    let mut h = History::default();
    for v in 1..=12 {
        h.push("k", v, Timestamp::EPOCH);
    }
    let e = h.entries().next().unwrap();
    assert_eq!(
        e.values.iter().copied().collect::<Vec<_>>(),
        (3..=12).collect::<Vec<_>>()
    );
    assert_eq!(h.mean("k"), 7.5);
    assert_eq!(h.mean("missing"), 0.0);
}

#[test]
fn compatible_lookup_prefers_live_then_smallest_key() {
    let mut c = CapacityStore::default();
    c.insert(record(
        "a",
        "x",
        LearnedFrom::Deployment,
        100,
        "2026-03-01T00:00:00Z",
    ));
    c.insert(record(
        "b",
        "y",
        LearnedFrom::Live,
        200,
        "2026-03-01T00:00:00Z",
    ));
    c.insert(record(
        "c",
        "z",
        LearnedFrom::Live,
        300,
        "2026-03-01T00:00:00Z",
    ));
    let p = VllmParams::default();
    assert_eq!(
        c.find_compatible("m", "H100", 1, &p)
            .unwrap()
            .effective_capacity,
        200
    );
    assert!(c.find_compatible("m", "H100", 2, &p).is_none());
    assert!(c.find_compatible("m", "A100", 1, &p).is_none());
    let other = VllmParams {
        block_size: 32,
        ..Default::default()
    };
    assert!(c.find_compatible("m", "H100", 1, &other).is_none());
    c.remove(&CapacityKey {
        namespace: "b".into(),
        model_id: "m".into(),
        variant: "y".into(),
    });
    c.remove(&CapacityKey {
        namespace: "c".into(),
        model_id: "m".into(),
        variant: "z".into(),
    });
    assert_eq!(
        c.find_compatible("m", "H100", 1, &p)
            .unwrap()
            .effective_capacity,
        100
    );
}

#[test]
fn compatible_lookup_needs_some_known_capacity() {
    let mut c = CapacityStore::default();
    c.insert(record(
        "a",
        "x",
        LearnedFrom::Live,
        0,
        "2026-03-01T00:00:00Z",
    ));
    assert!(
        c.find_compatible("m", "H100", 1, &VllmParams::default())
            .is_none()
    );
}

#[test]
fn overwriting_a_record_moves_it_in_the_index() {
    let mut c = CapacityStore::default();
    c.insert(record(
        "a",
        "x",
        LearnedFrom::Live,
        10,
        "2026-03-01T00:00:00Z",
    ));
    let mut moved = record("a", "x", LearnedFrom::Live, 10, "2026-03-01T00:00:00Z");
    moved.accelerator = "A100".into();
    c.insert(moved);
    assert_eq!(c.len(), 1);
    assert!(
        c.find_compatible("m", "H100", 1, &VllmParams::default())
            .is_none()
    );
    assert!(
        c.find_compatible("m", "A100", 1, &VllmParams::default())
            .is_some()
    );
}

#[test]
fn state_document_round_trips_sorted_and_rejects_duplicates() {
    let doc = StateDocument {
        capacity: vec![
            record("b", "y", LearnedFrom::Live, 1, "2026-03-01T00:00:00Z"),
            record(
                "a",
                "x",
                LearnedFrom::Deployment,
                2,
                "2026-03-01T00:00:00.5Z",
            ),
        ],
        history: vec![],
    };
    let state = CoreState::from_document(&doc).unwrap();
    let json = serde_json::to_string(&state).unwrap();
    assert!(json.find("\"a\"").unwrap() < json.find("\"b\"").unwrap());
    assert!(json.contains("\"learnedAt\":\"2026-03-01T00:00:00.500Z\""));
    let back: CoreState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, state);
    let dup = StateDocument {
        capacity: vec![doc.capacity[0].clone(), doc.capacity[0].clone()],
        history: vec![],
    };
    assert!(CoreState::from_document(&dup).is_err());
    assert_eq!(state.latest_timestamp(), Some(ts("2026-03-01T00:00:00.5Z")));
}
