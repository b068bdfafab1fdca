//! vLLM fleet emulator (spec/sim.md).
