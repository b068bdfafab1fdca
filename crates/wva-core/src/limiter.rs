//! The GPU limiter and accelerator-name normalisation (spec/core.md §6.3).

use std::collections::BTreeMap;

use crate::Reason;

/// Normalises an accelerator name: `NVIDIA-H200-141GB` → `H200`,
/// `Intel-Gaudi-3-128GB` → `Gaudi-3`, `H100` → `H100`.
pub fn normalize_accelerator(name: &str) -> String {
    if !name.contains('-') {
        return name.to_string();
    }
    let parts: Vec<&str> = name.split('-').collect();
    let vendor = parts[0].to_ascii_uppercase();
    if vendor == "INTEL" && parts.len() >= 3 {
        format!("{}-{}", parts[1], parts[2])
    } else {
        parts[1].to_string()
    }
}

/// Inventory with normalised keys, collisions summed.
pub fn normalize_inventory(inventory: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in inventory {
        let slot = out.entry(normalize_accelerator(k)).or_insert(0);
        *slot = slot.saturating_add(*v);
    }
    out
}

/// One decision as the limiter sees it.
#[derive(Debug)]
pub(crate) struct LimiterItem<'a> {
    pub(crate) accelerator: &'a str,
    pub(crate) gpus: u32,
    pub(crate) current: u32,
    pub(crate) target: &'a mut u32,
    pub(crate) reason: &'a mut Reason,
    pub(crate) detail: &'a mut String,
    /// A queueing-model decision (its scale-ups count as used).
    pub(crate) queueing: bool,
    /// `Some(avgSpareKv)` for V1 decisions that may be limited.
    pub(crate) candidate: Option<f64>,
    pub(crate) cost: f64,
    /// (namespace, modelID, variant).
    pub(crate) sort_key: (&'a str, &'a str, &'a str),
}

/// Cuts V1 scale-ups to the GPUs left in `inventory`.
pub(crate) fn limit(items: &mut [LimiterItem<'_>], inventory: &BTreeMap<String, u64>) {
    let limits = normalize_inventory(inventory);
    let mut used: BTreeMap<String, u64> = BTreeMap::new();
    for it in items.iter() {
        if it.accelerator.is_empty() {
            continue;
        }
        let n = if it.queueing && *it.target > it.current {
            *it.target
        } else {
            it.current
        };
        let slot = used
            .entry(normalize_accelerator(it.accelerator))
            .or_insert(0);
        *slot = slot.saturating_add(u64::from(it.gpus).saturating_mul(u64::from(n)));
    }
    let mut available: BTreeMap<String, u64> = limits
        .iter()
        .map(|(t, l)| {
            (
                t.clone(),
                l.saturating_sub(used.get(t).copied().unwrap_or(0)),
            )
        })
        .collect();

    let mut order: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].candidate.is_some() && *items[i].target > items[i].current)
        .collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&items[a], &items[b]);
        x.candidate
            .unwrap_or(0.0)
            .total_cmp(&y.candidate.unwrap_or(0.0))
            .then_with(|| x.cost.total_cmp(&y.cost))
            .then_with(|| x.sort_key.cmp(&y.sort_key))
    });
    for i in order {
        let it = &mut items[i];
        let need = *it.target - it.current;
        let g = it.gpus;
        let add = if it.accelerator.is_empty() {
            0
        } else {
            let avail = available
                .entry(normalize_accelerator(it.accelerator))
                .or_insert(0);
            let add = u64::from(need).min(*avail / u64::from(g));
            *avail -= add * u64::from(g);
            u32::try_from(add).unwrap_or(need)
        };
        *it.target = it.current + add;
        if add < need {
            *it.reason = Reason::GpuLimited;
            *it.detail = format!(
                "limited: allocated {} GPUs for +{add} replicas",
                u64::from(add) * u64::from(g)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_vendor_prefixed_names() {
        assert_eq!(normalize_accelerator("NVIDIA-H200-141GB"), "H200");
        assert_eq!(normalize_accelerator("nvidia-A100-SXM4-40GB"), "A100");
        assert_eq!(normalize_accelerator("AMD-MI300X-192G"), "MI300X");
        assert_eq!(normalize_accelerator("Intel-Gaudi-3-128GB"), "Gaudi-3");
        assert_eq!(normalize_accelerator("INTEL-Gaudi"), "Gaudi");
        assert_eq!(normalize_accelerator("Google-TPU-v5"), "TPU");
        assert_eq!(normalize_accelerator("H100"), "H100");
        assert_eq!(normalize_accelerator(""), "");
    }

    #[test]
    fn inventory_collisions_are_summed() {
        let inv = BTreeMap::from([
            ("A100".to_string(), 4),
            ("NVIDIA-A100-SXM4-40GB".to_string(), 6),
        ]);
        assert_eq!(
            normalize_inventory(&inv),
            BTreeMap::from([("A100".to_string(), 10)])
        );
    }

    struct Row {
        acc: &'static str,
        gpus: u32,
        current: u32,
        target: u32,
        reason: Reason,
        detail: String,
        candidate: Option<f64>,
        cost: f64,
        name: &'static str,
    }

    fn row(
        acc: &'static str,
        gpus: u32,
        current: u32,
        target: u32,
        spare: Option<f64>,
        name: &'static str,
    ) -> Row {
        Row {
            acc,
            gpus,
            current,
            target,
            reason: Reason::QueueSaturation,
            detail: String::new(),
            candidate: spare,
            cost: 1.0,
            name,
        }
    }

    fn run(rows: &mut [Row], inv: &[(&str, u64)]) {
        let inv: BTreeMap<String, u64> = inv.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let mut items: Vec<LimiterItem<'_>> = rows
            .iter_mut()
            .map(|r| LimiterItem {
                accelerator: r.acc,
                gpus: r.gpus,
                current: r.current,
                target: &mut r.target,
                reason: &mut r.reason,
                detail: &mut r.detail,
                queueing: false,
                candidate: r.candidate,
                cost: r.cost,
                sort_key: ("ns", "m", r.name),
            })
            .collect();
        limit(&mut items, &inv);
    }

    #[test]
    fn example_5_cuts_a_scale_up_to_the_free_gpus() {
        let mut rows = [
            row("A100", 2, 3, 5, Some(0.05), "x"),
            row("NVIDIA-A100-SXM4-40GB", 2, 1, 1, None, "y"),
        ];
        run(&mut rows, &[("A100", 10)]);
        assert_eq!(rows[0].target, 4);
        assert_eq!(rows[0].reason, Reason::GpuLimited);
        assert_eq!(rows[0].detail, "limited: allocated 2 GPUs for +1 replicas");
        assert_eq!(rows[1].target, 1);
    }

    #[test]
    fn lowest_spare_kv_gets_gpus_first() {
        let mut rows = [
            row("H100", 1, 1, 2, Some(0.09), "a"),
            row("H100", 1, 1, 2, Some(0.01), "b"),
        ];
        run(&mut rows, &[("H100", 3)]);
        assert_eq!(rows[1].target, 2);
        assert_eq!(rows[0].target, 1);
        assert_eq!(rows[0].detail, "limited: allocated 0 GPUs for +0 replicas");
    }

    #[test]
    fn unknown_type_or_empty_accelerator_gets_nothing() {
        let mut rows = [
            row("", 1, 1, 2, Some(0.0), "a"),
            row("TPU", 1, 1, 2, Some(0.0), "b"),
        ];
        run(&mut rows, &[("H100", 100)]);
        assert_eq!((rows[0].target, rows[1].target), (1, 1));
        assert_eq!(rows[0].reason, Reason::GpuLimited);
    }

    #[test]
    fn exact_fit_is_not_limited() {
        let mut rows = [row("H100", 2, 1, 2, Some(0.0), "a")];
        run(&mut rows, &[("H100", 4)]);
        assert_eq!(rows[0].target, 2);
        assert_eq!(rows[0].reason, Reason::QueueSaturation);
    }
}
