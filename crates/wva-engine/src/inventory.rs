//! What the engine asks its environment each cycle: the variants and the configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use wva_collector::CollectedSnapshot;
use wva_core::{SaturationConfig, ScaleToZeroConfig, VariantState};

/// One variant as the inventory sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryVariant {
    /// Spec and state, in the core's terms.
    pub state: VariantState,
    /// `false` when the scale target asks for 0 replicas: not analysed, previous target kept.
    pub active: bool,
}

/// Everything one cycle needs from the environment, read from memory (no API call).
#[derive(Debug, Clone, Default)]
pub struct InventorySnapshot {
    /// Every known variant, active or not.
    pub variants: Vec<InventoryVariant>,
    /// The accepted saturation scaling configuration (the last good one).
    pub saturation: Arc<SaturationConfig>,
    /// The accepted scale-to-zero configuration.
    pub scale_to_zero: Arc<ScaleToZeroConfig>,
    /// Whether scale-to-zero is enabled for models no entry mentions.
    pub scale_to_zero_fallback: bool,
    /// GPUs per accelerator type available to the limiter; `None` disables it.
    pub gpu_inventory: Option<BTreeMap<String, u64>>,
}

/// Source of the variants and configuration. Kubernetes reads reflector stores; standalone
/// mode reads a file; the demo reads the simulated fleet.
pub trait Inventory: Send + Sync {
    /// The current variants and configuration.
    fn snapshot(&self) -> InventorySnapshot;

    /// Completes the snapshot with what only the collected metrics know (standalone mode
    /// learns current and ready replicas from Prometheus). The default changes nothing.
    fn observe(&self, _snapshot: &mut InventorySnapshot, _collected: &CollectedSnapshot) {}
}
