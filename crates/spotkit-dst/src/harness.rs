//! The single-threaded harness every world runs on: a seeded RNG, a virtual clock, an event
//! queue ordered by (time, insertion sequence), a trace whose hash identifies a run, and the
//! violations with their replay command.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::Duration;

use spotkit_core::Timestamp;
use spotkit_core::backoff::SplitMix64;

/// Where every run starts (2026-01-01T00:00:00Z): fixed, so traces do not depend on the host.
pub const START: Timestamp = Timestamp::from_unix_secs(1_767_225_600);

/// Trace lines kept for a failure report (the hash covers every line).
const TRACE_TAIL: usize = 60;

/// Which world a seed runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum World {
    /// `PoolMachine` against `SpotCloud`.
    Orchestrator,
    /// `AgentMachine` against `ImdsModel`.
    Agent,
    /// `WorkerMachine`s against queue and store doubles.
    Worker,
}

impl World {
    /// Every world, in the order `run_seeds` cycles through them.
    pub const ALL: [World; 3] = [World::Orchestrator, World::Agent, World::Worker];

    /// The name used on the command line and in replay commands.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            World::Orchestrator => "orchestrator",
            World::Agent => "agent",
            World::Worker => "worker",
        }
    }

    /// Parses [`World::as_str`].
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == name)
    }

    /// The test in `tests/seeds.rs` that replays one seed of this world.
    #[must_use]
    pub const fn test_name(self) -> &'static str {
        match self {
            World::Orchestrator => "orchestrator_seeds",
            World::Agent => "agent_seeds",
            World::Worker => "worker_seeds",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one-line command that replays `seed` of `world`.
#[must_use]
pub fn replay_command(world: World, seed: u64) -> String {
    format!(
        "SPOTKIT_DST_SEED={seed} cargo test -p spotkit-dst --test seeds -- {test}   # or: spotkit bench dst --world {world} --seeds 1 --first-seed {seed}",
        test = world.test_name()
    )
}

/// An invariant that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The checker's name.
    pub invariant: &'static str,
    /// Simulated time of the step after which it was found.
    pub at: Timestamp,
    /// What was wrong, with the values involved.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at +{:.3}s: {}",
            self.invariant,
            self.at.since(START).as_secs_f64(),
            self.detail
        )
    }
}

/// What one seed produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The world.
    pub world: World,
    /// The seed.
    pub seed: u64,
    /// Violations, first first (a run stops collecting after a few).
    pub violations: Vec<Violation>,
    /// FNV-1a of every trace line: equal hashes, equal runs.
    pub trace_hash: u64,
    /// Events processed.
    pub steps: u64,
    /// The last trace lines, for a failure report.
    pub tail: Vec<String>,
}

impl Outcome {
    /// Whether every invariant held.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// A multi-line failure report: violations, the trace's end and the replay command.
    #[must_use]
    pub fn report(&self) -> String {
        let mut out = format!("seed {} of world {} failed:\n", self.seed, self.world);
        for v in &self.violations {
            out.push_str(&format!("  {v}\n"));
        }
        out.push_str("  trace (end):\n");
        for line in &self.tail {
            out.push_str(&format!("    {line}\n"));
        }
        out.push_str(&format!(
            "  replay: {}\n",
            replay_command(self.world, self.seed)
        ));
        out
    }
}

/// The event log of a run: hashed line by line, the last lines kept.
#[derive(Clone, Debug)]
pub struct Trace {
    hash: u64,
    lines: u64,
    tail: VecDeque<String>,
    keep_all: Option<Vec<String>>,
}

impl Trace {
    /// An empty trace; `keep_all` keeps every line (for debugging a seed).
    #[must_use]
    pub fn new(keep_all: bool) -> Self {
        Self {
            hash: 0xcbf2_9ce4_8422_2325,
            lines: 0,
            tail: VecDeque::with_capacity(TRACE_TAIL),
            keep_all: keep_all.then(Vec::new),
        }
    }

    /// Appends a line stamped with `at`.
    pub fn record(&mut self, at: Timestamp, line: impl fmt::Display) {
        let line = format!("+{:.3}s {line}", at.since(START).as_secs_f64());
        for byte in line.bytes().chain(std::iter::once(b'\n')) {
            self.hash ^= u64::from(byte);
            self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
        }
        self.lines += 1;
        if self.tail.len() == TRACE_TAIL {
            self.tail.pop_front();
        }
        if let Some(all) = &mut self.keep_all {
            all.push(line.clone());
        }
        self.tail.push_back(line);
    }

    /// The hash of every line so far.
    #[must_use]
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Lines recorded.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.lines
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// The last lines.
    #[must_use]
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// Every line, when the trace was made with `keep_all`.
    #[must_use]
    pub fn all(&self) -> Option<&[String]> {
        self.keep_all.as_deref()
    }
}

/// The harness's random draws: one `SplitMix64`, drawn in a fixed order.
#[derive(Clone, Debug)]
pub struct Rng(SplitMix64);

impl Rng {
    /// Draws fixed by `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        #[allow(clippy::cast_precision_loss)] // 53 bits of mantissa are plenty here
        let x = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        x < p
    }

    /// A duration uniform in `lo..=hi` at millisecond resolution.
    pub fn duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let lo_ms = u64::try_from(lo.as_millis()).unwrap_or(u64::MAX);
        let hi_ms = u64::try_from(hi.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(self.between(lo_ms, hi_ms))
    }

    /// One of `items`, uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = usize::try_from(self.below(items.len() as u64)).unwrap_or(0);
        &items[index]
    }
}

struct Scheduled<E> {
    at: Timestamp,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Scheduled<E> {
    // BinaryHeap is a max-heap: reversed, the earliest (then first-scheduled) event pops first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The harness: virtual time, one event queue, one RNG, the trace and the violations found.
pub struct Simulation<E> {
    seed: u64,
    now: Timestamp,
    seq: u64,
    steps: u64,
    queue: BinaryHeap<Scheduled<E>>,
    /// The harness's draws (fault schedule, latencies).
    pub rng: Rng,
    /// The run's event log.
    pub trace: Trace,
    violations: Vec<Violation>,
}

/// Violations kept per run: the first ones explain the failure, the rest are consequences.
const MAX_VIOLATIONS: usize = 5;

impl<E> Simulation<E> {
    /// A simulation at [`START`] whose draws are fixed by `seed`.
    #[must_use]
    pub fn new(seed: u64, keep_trace: bool) -> Self {
        Self {
            seed,
            now: START,
            seq: 0,
            steps: 0,
            queue: BinaryHeap::new(),
            rng: Rng::new(seed ^ 0x5eed_d57d_57d5_eed5),
            trace: Trace::new(keep_trace),
            violations: Vec::new(),
        }
    }

    /// The seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Virtual time now.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Schedules `event` at `at` (never before now: a late event runs now).
    pub fn schedule(&mut self, at: Timestamp, event: E) {
        let at = at.max(self.now);
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    /// Schedules `event` after `delay`.
    pub fn schedule_in(&mut self, delay: Duration, event: E) {
        self.schedule(self.now.plus(delay), event);
    }

    /// Pops the next event at or before `until`, advancing the clock to it.
    pub fn next_event(&mut self, until: Timestamp) -> Option<E> {
        if self.queue.peek()?.at > until {
            return None;
        }
        let next = self.queue.pop()?;
        self.now = next.at;
        self.steps += 1;
        Some(next.event)
    }

    /// Records a violation (the first few are kept).
    pub fn violate(&mut self, invariant: &'static str, detail: String) {
        self.trace
            .record(self.now, format!("VIOLATION {invariant}: {detail}"));
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(Violation {
                invariant,
                at: self.now,
                detail,
            });
        }
    }

    /// Whether a violation was found.
    #[must_use]
    pub fn failed(&self) -> bool {
        !self.violations.is_empty()
    }

    /// The outcome for `world`.
    #[must_use]
    pub fn finish(self, world: World) -> Outcome {
        Outcome {
            world,
            seed: self.seed,
            trace_hash: self.trace.hash(),
            steps: self.steps,
            tail: self.trace.tail(),
            violations: self.violations,
        }
    }
}

/// Runs one seed of one world.
#[must_use]
pub fn run_seed(world: World, seed: u64) -> Outcome {
    match world {
        World::Orchestrator => crate::orchestrator::run(seed, false).0,
        World::Agent => crate::agent::run(seed, false).0,
        World::Worker => crate::worker::run(seed, false).0,
    }
}

/// Runs `count` seeds from `first`, each world in turn when `world` is `None`.
pub fn run_seeds(world: Option<World>, first: u64, count: u64) -> Vec<Outcome> {
    (0..count)
        .map(|i| {
            let seed = first.wrapping_add(i);
            let w = world.unwrap_or_else(|| {
                World::ALL[usize::try_from(i % World::ALL.len() as u64).unwrap_or(0)]
            });
            run_seed(w, seed)
        })
        .collect()
}
