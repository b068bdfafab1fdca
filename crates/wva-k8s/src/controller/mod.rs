//! The controller side of wva-k8s: the per-VA reconcile, status apply, Events, actuation, and the
//! engine's `Inventory`/`Actuator` implementations over the reflector stores (spec/k8s.md §2–§5).
