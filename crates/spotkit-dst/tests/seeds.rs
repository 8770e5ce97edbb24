//! The CI soak: many seeds of every world, and determinism. `SPOTKIT_DST_SEEDS=N` changes how
//! many seeds each world runs; `SPOTKIT_DST_SEED=S` runs only seed `S` (the replay command a
//! failure prints) and prints its whole trace.

use spotkit_dst::{World, run_seed};

/// Orchestrator seeds by default (about 30 ms each in debug); agent and worker seeds are
/// cheaper and run more: 6,000 seeds in all, about 40 s of one core in debug.
const DEFAULT_SEEDS: u64 = 1000;
/// Agent seeds are cheap (about 3 ms each in debug), so the agent world runs more.
const AGENT_SEEDS_FACTOR: u64 = 3;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a seed count or seed number"))
    })
}

fn soak(world: World, offset: u64, factor: u64) {
    if let Some(seed) = env_u64("SPOTKIT_DST_SEED") {
        let (outcome, trace) = match world {
            World::Orchestrator => spotkit_dst::orchestrator::run(seed, true),
            World::Agent => spotkit_dst::agent::run(seed, true),
            World::Worker => spotkit_dst::worker::run(seed, true),
        };
        for line in &trace {
            println!("{line}");
        }
        assert!(outcome.passed(), "{}", outcome.report());
        return;
    }
    let count = env_u64("SPOTKIT_DST_SEEDS").unwrap_or(DEFAULT_SEEDS * factor);
    let mut failures = Vec::new();
    for seed in offset..offset + count {
        let outcome = run_seed(world, seed);
        if !outcome.passed() {
            failures.push(outcome.report());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn orchestrator_seeds() {
    soak(World::Orchestrator, 0, 1);
}

#[test]
fn agent_seeds() {
    soak(World::Agent, 1_000_000, AGENT_SEEDS_FACTOR);
}

#[test]
fn worker_seeds() {
    soak(World::Worker, 2_000_000, 2);
}

#[test]
fn same_seed_gives_the_same_trace_twice() {
    for world in World::ALL {
        for seed in [1, 42, 7_777] {
            let a = run_seed(world, seed);
            let b = run_seed(world, seed);
            assert_eq!(
                a.trace_hash, b.trace_hash,
                "{world} seed {seed} is not deterministic"
            );
            assert_eq!(a.steps, b.steps);
        }
        assert_ne!(
            run_seed(world, 1).trace_hash,
            run_seed(world, 2).trace_hash,
            "{world}: different seeds should give different runs"
        );
    }
}
