//! `spotkit bench dst`: a deterministic-simulation soak. Runs seeds of the spotkit-dst worlds,
//! prints seeds per second (wall clock, single thread) and every violation with its one-line
//! replay command, and exits 1 if any seed violated an invariant.
#![allow(clippy::disallowed_methods)] // a benchmark measures real time: that is its job

use std::collections::BTreeMap;
use std::time::Instant;

use spotkit_dst::{World, run_seed};

use crate::Failure;

#[derive(Debug, clap::Args)]
pub struct DstBench {
    /// How many seeds to run.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Which world: `all` (each seed in every world), `orchestrator`, `agent` or `worker`.
    #[arg(long, default_value = "all")]
    world: String,
}

pub fn bench_dst(args: &DstBench) -> Result<u8, Failure> {
    let worlds: Vec<World> = if args.world == "all" {
        World::ALL.to_vec()
    } else {
        vec![World::from_name(&args.world).ok_or_else(|| {
            Failure::usage(anyhow::anyhow!(
                "unknown world {:?}: use all, orchestrator, agent or worker",
                args.world
            ))
        })?]
    };
    let mut failed = 0u64;
    let mut per_world: BTreeMap<World, (u64, f64, u64)> = BTreeMap::new();
    let started = Instant::now();
    for i in 0..args.seeds {
        let seed = args.first_seed.wrapping_add(i);
        for world in &worlds {
            let t0 = Instant::now();
            let outcome = run_seed(*world, seed);
            let entry = per_world.entry(*world).or_default();
            entry.0 += 1;
            entry.1 += t0.elapsed().as_secs_f64();
            entry.2 += outcome.steps;
            if !outcome.passed() {
                failed += 1;
                print!("{}", outcome.report());
            }
        }
    }
    let total = started.elapsed().as_secs_f64();
    for (world, (count, secs, steps)) in &per_world {
        #[allow(clippy::cast_precision_loss)] // counts far below 2^53
        let (rate, step_rate) = (
            *count as f64 / secs.max(1e-9),
            *steps as f64 / secs.max(1e-9),
        );
        println!(
            "world {world}: {count} seeds in {secs:.2} s = {rate:.0} seeds/s ({step_rate:.0} events/s)"
        );
    }
    let runs: u64 = per_world.values().map(|v| v.0).sum();
    #[allow(clippy::cast_precision_loss)]
    let rate = runs as f64 / total.max(1e-9);
    println!(
        "dst: {runs} seed runs from seed {} in {total:.2} s = {rate:.0} seeds/s; {failed} violated an invariant",
        args.first_seed
    );
    Ok(u8::from(failed > 0))
}
