//! spotkit's local Azure spot cloud.
//!
//! - [`cloud`]: the spot-cloud simulator: a seeded model of capacity, prices, Spot VM
//!   semantics, evictions and billing; its deterministic mode behind `ComputeCloud`; and an
//!   HTTP facade with Azure's ARM compute paths, per-VM IMDS and an admin API
//!   (`SIMULATOR.md`).
//! - [`imds`]: an emulator of the Instance Metadata Service (Scheduled Events, instance
//!   metadata, managed-identity token, fault injection), a pure model plus a thin HTTP facade;
//!   the simulator runs one model per simulated VM (`IMDS-EMULATOR.md`).
//! - [`catalog`]: what the simulated cloud sells at one instant (`CatalogSnapshot`).

pub mod catalog;
pub mod cloud;
pub mod imds;

pub use imds::{ImdsConfig, ImdsEmulator, ImdsModel};
