//! Labels and annotations that wva-manager reads (spec/k8s.md §1.6).

/// VA label naming the accelerator, e.g. `H100`.
pub const ACCELERATOR_LABEL: &str = "inference.optimization/acceleratorName";
/// VA label selecting the controller instance that owns the VA (multi-controller isolation).
pub const CONTROLLER_INSTANCE_LABEL: &str = "wva.llmd.ai/controller-instance";
/// Namespace annotation: `"true"` removes the namespace from wva-manager entirely.
pub const EXCLUDE_ANNOTATION: &str = "wva.llmd.ai/exclude";
/// Namespace label: `"true"` lets namespace-local ConfigMaps apply without a tracked VA.
pub const CONFIG_ENABLED_LABEL: &str = "wva.llmd.ai/config-enabled";
/// Pod label carrying the ReplicaSet's pod-template hash.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
/// Pod label naming the owning LeaderWorkerSet.
pub const LWS_NAME_LABEL: &str = "leaderworkerset.sigs.k8s.io/name";
/// The field manager of every write.
pub const FIELD_MANAGER: &str = "wva-manager";
