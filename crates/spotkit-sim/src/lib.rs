//! spotkit's local Azure spot cloud.
//!
//! For now it holds [`imds`], an emulator of the Instance Metadata Service (Scheduled Events,
//! instance metadata, fault injection) built as a pure model plus a thin HTTP facade, so a later
//! spot-cloud simulator can run one per simulated VM.

pub mod catalog;
pub mod cloud;
pub mod imds;

pub use imds::{ImdsConfig, ImdsEmulator, ImdsModel};
