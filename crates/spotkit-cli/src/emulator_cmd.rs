//! `spotkit imds-emulator`: the IMDS emulator as a process (tests, demo, bench, manual poking).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use spotkit_cloud::SystemClock;
use spotkit_sim::{ImdsConfig, ImdsEmulator};

use crate::Failure;

/// Serves the emulator until killed. Admin API: crates/spotkit-sim/IMDS-EMULATOR.md.
#[derive(Debug, clap::Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free port. The first line on stdout says which.
    #[arg(
        long,
        default_value = "127.0.0.1:8169",
        env = "SPOTKIT_EMULATOR_LISTEN"
    )]
    listen: SocketAddr,
    /// The emulated VM's name (instance metadata compute.name, default event Resources).
    #[arg(long, default_value = "spotkit-vm-1")]
    vm_name: String,
    /// The emulated VM's region.
    #[arg(long, default_value = "eastus")]
    location: String,
    /// The emulated VM's size.
    #[arg(long, default_value = "Standard_D2s_v5")]
    vm_size: String,
    /// Seed for event ids: the same seed and the same requests give the same ids.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn main(args: EmulatorArgs) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    runtime.block_on(serve(args)).map_err(Failure::runtime)
}

async fn serve(args: EmulatorArgs) -> anyhow::Result<u8> {
    let mut config = ImdsConfig::spot_vm(args.vm_name);
    config.location = args.location;
    config.vm_size = args.vm_size;
    config.seed = args.seed;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; pick a free port or use port 0",
                args.listen
            )
        })?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the emulator listens beyond loopback, as asked");
    }
    // The first stdout line is the contract with scripts and tests: they read the address here.
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;
    ImdsEmulator::new(config, Arc::new(SystemClock))
        .serve(listener)
        .await
        .context("the emulator stopped")?;
    Ok(0)
}
