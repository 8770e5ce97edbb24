//! Finishing a job by a deadline at least cost, mixing spot and on-demand: the "Can't Be Late"
//! setting (Wu et al., NSDI'24, "Can't Be Late: Optimizing Spot Instance Savings under Deadlines").
//!
//! # The model
//! A job needs `work` of compute and must finish within `deadline` of its start. Time runs in ticks
//! of a fixed length; at the start of each tick the trace says whether spot capacity is available
//! for the whole tick. A policy picks a [`Placement`] per tick: idle (free, no progress), spot
//! (cheap, only while available) or on-demand (always available, full price). Every launch of a
//! new instance, i.e. starting from idle, switching spot to on-demand or back, or restarting after
//! a preemption, pays the restart overhead `d`: billed time without progress. Progress survives a
//! preemption (the job checkpoints); the preempted instance's unfinished overhead does not.
//! [`run`] steps a policy over a trace and returns the [`DeadlineOutcome`].
//!
//! # The deadline guarantee (all three policies)
//! Write `left` for the time left to the deadline, `rem` for the remaining work and
//! `slack = left - rem`. Invariant at every tick start:
//! (I) either the job runs on on-demand with `rem + pending ≤ left` (`pending` = unpaid overhead of
//! the current instance), or `slack ≥ d`.
//!
//! * Start: `slack = deadline - work ≥ d` ([`DeadlineJob::new`] rejects anything else).
//! * A policy may leave or avoid on-demand for a tick only if [`is_safe`] says the state *after*
//!   the tick, computed exactly because this tick's availability is known, still has `slack ≥ d`.
//!   Continuing on spot with no pending overhead keeps slack unchanged, so it is always safe.
//! * Switching to on-demand from a state with `slack ≥ d` sets `pending = d` and keeps
//!   `rem + d ≤ left`. On on-demand `rem + pending` and `left` both fall by one tick per tick.
//! * So (I) holds at every tick, and the on-demand branch finishes by the deadline.
//!
//! [`must_use_on_demand`] is that threshold: no non-on-demand choice is safe. Every policy here
//! consults it before idling or using spot, so every deadline is met whenever the job is feasible.
//!
//! # The policies
//! * [`Greedy`]: spot whenever available, idle otherwise, until [`must_use_on_demand`]; then
//!   on-demand to the end.
//! * [`UniformProgress`] (the paper's four rules): on-demand when idle and behind the line
//!   `work · t / deadline`; spot whenever available; once on on-demand, stay until progress
//!   reaches the line at `t + 2d` (hysteresis); and a safety net that commits to on-demand to the
//!   end once an idle job's slack falls below `2d`.
//! * [`DeadlineAware`] (spotkit's): the same line, with two changes aimed at cost.
//!   - No permanent commitment. Uniform Progress's safety net turns every later spot window into
//!     on-demand time; `DeadlineAware` relies on the exact guard instead ([`is_safe`]: a choice is
//!     taken only if afterwards on-demand can still finish), so it keeps using spot whenever a spot
//!     start still leaves `slack ≥ d`, and never idles when [`must_use_on_demand`] holds.
//!   - A wider hysteresis band, in slack: leave on-demand for idle only when `slack ≥ line + band`,
//!     `band = max(2d, tick)` (Uniform Progress: `2d · work / deadline`). On on-demand slack is
//!     constant while the line falls at `S0 / deadline` (`S0` = initial slack); idle spends slack at
//!     rate 1. Each on-demand restart costs `d` of billed time without progress, so a band of at
//!     least `2d` caps that waste at about half the band's worth of on-demand time per cycle, and a
//!     band of at least one tick stops the one-tick-on, one-tick-off cycle that a band shorter
//!     than a tick allows.
//!
//!   This is a cost argument, not a theorem; the benchmark (`spotkit bench deadline`) measures it.

use std::time::Duration;

/// The job: how much work, by when, and what every (re)start costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadlineJob {
    work: Duration,
    deadline: Duration,
    restart_overhead: Duration,
}

/// Why a job cannot be scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadlineJobError {
    /// `deadline - work` is less than one restart overhead: not even all on-demand would finish.
    Infeasible {
        /// Work asked for.
        work: Duration,
        /// Deadline asked for.
        deadline: Duration,
        /// Restart overhead asked for.
        restart_overhead: Duration,
    },
    /// Zero work or a zero tick: nothing to schedule.
    Empty,
}

impl std::fmt::Display for DeadlineJobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Infeasible {
                work,
                deadline,
                restart_overhead,
            } => write!(
                f,
                "a job of {work:?} with deadline {deadline:?} and restart overhead \
                 {restart_overhead:?} cannot finish even on on-demand: give the deadline at least \
                 work + overhead"
            ),
            Self::Empty => write!(f, "the job has zero work or the tick is zero"),
        }
    }
}

impl std::error::Error for DeadlineJobError {}

impl DeadlineJob {
    /// A job of `work` due `deadline` after its start, paying `restart_overhead` per launch.
    ///
    /// # Errors
    /// [`DeadlineJobError::Infeasible`] if `deadline < work + restart_overhead`,
    /// [`DeadlineJobError::Empty`] if `work` is zero.
    pub fn new(
        work: Duration,
        deadline: Duration,
        restart_overhead: Duration,
    ) -> Result<Self, DeadlineJobError> {
        if work.is_zero() {
            return Err(DeadlineJobError::Empty);
        }
        if deadline < work + restart_overhead {
            return Err(DeadlineJobError::Infeasible {
                work,
                deadline,
                restart_overhead,
            });
        }
        Ok(Self {
            work,
            deadline,
            restart_overhead,
        })
    }

    /// Work asked for.
    #[must_use]
    pub const fn work(&self) -> Duration {
        self.work
    }

    /// Deadline after the start.
    #[must_use]
    pub const fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Overhead per launch.
    #[must_use]
    pub const fn restart_overhead(&self) -> Duration {
        self.restart_overhead
    }
}

/// Where the job runs during a tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Not running: no cost, no progress.
    Idle,
    /// On a spot instance.
    Spot,
    /// On an on-demand instance.
    OnDemand,
}

/// The job's state at the start of a tick, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobState {
    /// Time since the job's start.
    pub elapsed: Duration,
    /// Work still to do.
    pub remaining: Duration,
    /// Where it runs now (`Idle` right after a preemption).
    pub placement: Placement,
    /// Overhead of the current instance not yet paid.
    pub pending_overhead: Duration,
}

impl JobState {
    /// Time left to the deadline (zero once past it).
    #[must_use]
    pub fn time_left(&self, job: &DeadlineJob) -> Duration {
        job.deadline.saturating_sub(self.elapsed)
    }

    /// Seconds of slack: time left minus remaining work (negative when late).
    #[must_use]
    pub fn slack_secs(&self, job: &DeadlineJob) -> f64 {
        self.time_left(job).as_secs_f64() - self.remaining.as_secs_f64()
    }
}

/// A per-tick decision rule.
pub trait DeadlinePolicy {
    /// Short name for tables.
    fn name(&self) -> &'static str;
    /// Where to run during the tick starting in `state`.
    fn decide(
        &mut self,
        job: &DeadlineJob,
        state: &JobState,
        spot_available: bool,
        tick: Duration,
    ) -> Placement;
}

/// Progress a placement makes in one tick and the overhead it leaves unpaid.
fn tick_effect(
    job: &DeadlineJob,
    state: &JobState,
    choice: Placement,
    tick: Duration,
) -> (Duration, Duration) {
    if choice == Placement::Idle {
        return (Duration::ZERO, Duration::ZERO);
    }
    let pending = if choice == state.placement {
        state.pending_overhead
    } else {
        job.restart_overhead
    };
    let progress = tick.saturating_sub(pending).min(state.remaining);
    (progress, pending.saturating_sub(tick))
}

/// Whether choosing `choice` (idle or spot) for this tick keeps invariant (I): after the tick the
/// job either is done or can still switch to on-demand, pay `d` and finish by the deadline.
/// On-demand is always safe while (I) holds.
#[must_use]
pub fn is_safe(
    job: &DeadlineJob,
    state: &JobState,
    choice: Placement,
    spot_available: bool,
    tick: Duration,
) -> bool {
    match choice {
        Placement::OnDemand => true,
        Placement::Spot if !spot_available => false,
        Placement::Idle | Placement::Spot => {
            let (progress, pending_after) = tick_effect(job, state, choice, tick);
            let remaining_after = state.remaining - progress;
            if remaining_after.is_zero() && pending_after.is_zero() {
                // Finishes inside this tick: done before the deadline iff the time it needs fits.
                let needed = state.remaining
                    + if choice == state.placement {
                        state.pending_overhead
                    } else {
                        job.restart_overhead
                    };
                return needed <= state.time_left(job);
            }
            let left_after = state.time_left(job).saturating_sub(tick);
            left_after >= remaining_after + job.restart_overhead && state.time_left(job) >= tick
        }
    }
}

/// The "must go on-demand now" threshold: neither idling nor spot keeps the deadline safe.
#[must_use]
pub fn must_use_on_demand(
    job: &DeadlineJob,
    state: &JobState,
    spot_available: bool,
    tick: Duration,
) -> bool {
    !is_safe(job, state, Placement::Idle, spot_available, tick)
        && !is_safe(job, state, Placement::Spot, spot_available, tick)
}

/// Spot whenever available, idle otherwise, on-demand from the last safe moment to the end.
#[derive(Clone, Debug, Default)]
pub struct Greedy {
    committed: bool,
}

impl DeadlinePolicy for Greedy {
    fn name(&self) -> &'static str {
        "greedy"
    }

    fn decide(
        &mut self,
        job: &DeadlineJob,
        state: &JobState,
        spot_available: bool,
        tick: Duration,
    ) -> Placement {
        if self.committed {
            return Placement::OnDemand;
        }
        if is_safe(job, state, Placement::Spot, spot_available, tick) {
            Placement::Spot
        } else if is_safe(job, state, Placement::Idle, spot_available, tick) {
            Placement::Idle
        } else {
            self.committed = true;
            Placement::OnDemand
        }
    }
}

/// Seconds of slack the uniform line `progress = work · t / deadline` asks for at `elapsed`.
fn uniform_line_slack_secs(job: &DeadlineJob, elapsed: Duration) -> f64 {
    let initial_slack = job.deadline.as_secs_f64() - job.work.as_secs_f64();
    let fraction_left = 1.0 - elapsed.as_secs_f64() / job.deadline.as_secs_f64();
    initial_slack * fraction_left.max(0.0)
}

/// The paper's Uniform Progress, its four rules: (1) idle and behind the line
/// `work · t / deadline` -> on-demand; (2) spot whenever available, kept until preempted;
/// (3) hysteresis: once on on-demand, stay until progress reaches the line at `t + 2d`;
/// (4) safety net: idle with `left < rem + 2d` -> on-demand to the end. The shared
/// [`is_safe`] guard also applies, so ticks longer than `d` cannot break the deadline.
#[derive(Clone, Debug, Default)]
pub struct UniformProgress {
    committed: bool,
}

impl DeadlinePolicy for UniformProgress {
    fn name(&self) -> &'static str {
        "uniform-progress"
    }

    fn decide(
        &mut self,
        job: &DeadlineJob,
        state: &JobState,
        spot_available: bool,
        tick: Duration,
    ) -> Placement {
        let overhead = job.restart_overhead.as_secs_f64();
        if state.placement == Placement::Idle && state.slack_secs(job) < 2.0 * overhead {
            self.committed = true;
        }
        if self.committed {
            return Placement::OnDemand;
        }
        if is_safe(job, state, Placement::Spot, spot_available, tick) {
            return Placement::Spot;
        }
        let line = uniform_line_slack_secs(job, state.elapsed);
        let hysteresis = 2.0 * overhead * job.work.as_secs_f64() / job.deadline.as_secs_f64();
        let idle_allowed = if state.placement == Placement::OnDemand {
            state.slack_secs(job) >= line + hysteresis
        } else {
            state.slack_secs(job) >= line
        };
        if idle_allowed && is_safe(job, state, Placement::Idle, spot_available, tick) {
            Placement::Idle
        } else {
            Placement::OnDemand
        }
    }
}

/// spotkit's deadline-aware policy: Uniform Progress with hysteresis on leaving on-demand (see the
/// module docs for the reasoning and the deadline guarantee).
#[derive(Clone, Debug, Default)]
pub struct DeadlineAware {
    band: Option<Duration>,
}

impl DeadlineAware {
    /// With an explicit hysteresis band instead of `max(2d, tick)`.
    #[must_use]
    pub const fn with_band(band: Duration) -> Self {
        Self { band: Some(band) }
    }
}

impl DeadlinePolicy for DeadlineAware {
    fn name(&self) -> &'static str {
        "deadline-aware"
    }

    fn decide(
        &mut self,
        job: &DeadlineJob,
        state: &JobState,
        spot_available: bool,
        tick: Duration,
    ) -> Placement {
        if is_safe(job, state, Placement::Spot, spot_available, tick) {
            return Placement::Spot;
        }
        let band = self
            .band
            .unwrap_or_else(|| (job.restart_overhead * 2).max(tick))
            .as_secs_f64();
        let line = uniform_line_slack_secs(job, state.elapsed);
        let slack = state.slack_secs(job);
        let idle_allowed = if state.placement == Placement::OnDemand {
            slack >= line + band
        } else {
            slack >= line
        };
        if idle_allowed && is_safe(job, state, Placement::Idle, spot_available, tick) {
            Placement::Idle
        } else {
            Placement::OnDemand
        }
    }
}

/// What one run of a policy over a trace did.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadlineOutcome {
    /// Policy name.
    pub policy: &'static str,
    /// When the work was done (`None` if the trace ran out first, which [`run`] prevents by
    /// repeating it).
    pub finished_at: Option<Duration>,
    /// Whether it finished by the deadline.
    pub deadline_met: bool,
    /// Billed spot time (including overhead).
    pub spot_time: Duration,
    /// Billed on-demand time (including overhead).
    pub on_demand_time: Duration,
    /// Billed time that made no progress (restart overhead).
    pub overhead_time: Duration,
    /// Instances launched.
    pub launches: u32,
    /// Spot instances lost to the trace.
    pub preemptions: u32,
}

impl DeadlineOutcome {
    /// Cost at the given hourly prices.
    #[must_use]
    pub fn cost(&self, on_demand_per_hour: f64, spot_per_hour: f64) -> f64 {
        self.on_demand_time.as_secs_f64() / 3600.0 * on_demand_per_hour
            + self.spot_time.as_secs_f64() / 3600.0 * spot_per_hour
    }
}

/// Steps `policy` over `spot_available(tick_index)` from tick 0 until the job is done (at most
/// until the deadline plus the time all on-demand would take, as a bound on a faulty policy).
pub fn run(
    job: &DeadlineJob,
    policy: &mut dyn DeadlinePolicy,
    spot_available: &dyn Fn(u64) -> bool,
    tick: Duration,
) -> DeadlineOutcome {
    let mut outcome = DeadlineOutcome {
        policy: policy.name(),
        finished_at: None,
        deadline_met: false,
        spot_time: Duration::ZERO,
        on_demand_time: Duration::ZERO,
        overhead_time: Duration::ZERO,
        launches: 0,
        preemptions: 0,
    };
    if tick.is_zero() {
        return outcome;
    }
    let mut state = JobState {
        elapsed: Duration::ZERO,
        remaining: job.work,
        placement: Placement::Idle,
        pending_overhead: Duration::ZERO,
    };
    let horizon = job.deadline + job.work + job.restart_overhead * 2 + tick;
    let mut index = 0_u64;
    while state.elapsed < horizon {
        let available = spot_available(index);
        if state.placement == Placement::Spot && !available {
            outcome.preemptions += 1;
            state.placement = Placement::Idle;
            state.pending_overhead = Duration::ZERO;
        }
        let mut choice = policy.decide(job, &state, available, tick);
        if choice == Placement::Spot && !available {
            choice = Placement::Idle;
        }
        if choice != Placement::Idle && choice != state.placement {
            outcome.launches += 1;
        }
        let pending = if choice == state.placement {
            state.pending_overhead
        } else {
            job.restart_overhead
        };
        let (progress, pending_after) = tick_effect(job, &state, choice, tick);
        let busy = if choice == Placement::Idle {
            Duration::ZERO
        } else if progress == state.remaining && pending_after.is_zero() {
            pending.min(tick) + progress
        } else {
            tick
        };
        let overhead_paid = busy - progress;
        match choice {
            Placement::Idle => {}
            Placement::Spot => outcome.spot_time += busy,
            Placement::OnDemand => outcome.on_demand_time += busy,
        }
        outcome.overhead_time += overhead_paid;
        state.remaining -= progress;
        if state.remaining.is_zero() {
            let finished = state.elapsed + busy;
            outcome.finished_at = Some(finished);
            outcome.deadline_met = finished <= job.deadline;
            return outcome;
        }
        state.elapsed += tick;
        state.placement = choice;
        state.pending_overhead = if choice == Placement::Idle {
            Duration::ZERO
        } else {
            pending_after
        };
        index += 1;
    }
    outcome
}

/// A lower bound on any policy's cost, with perfect foresight: the spot time available before the
/// deadline does as much of the work as it can, on-demand does the rest, and no overhead is paid.
/// Cost at the given hourly prices.
#[must_use]
pub fn omniscient_lower_bound(
    job: &DeadlineJob,
    spot_available: &dyn Fn(u64) -> bool,
    tick: Duration,
    on_demand_per_hour: f64,
    spot_per_hour: f64,
) -> f64 {
    if tick.is_zero() {
        return 0.0;
    }
    let ticks = job.deadline.as_secs() / tick.as_secs().max(1);
    let available_ticks = (0..ticks).filter(|index| spot_available(*index)).count();
    let spot_secs = (available_ticks as f64 * tick.as_secs_f64()).min(job.work.as_secs_f64());
    let on_demand_secs = job.work.as_secs_f64() - spot_secs;
    (spot_secs * spot_per_hour + on_demand_secs * on_demand_per_hour) / 3600.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const TICK: Duration = Duration::from_secs(300);
    const OD: f64 = 3.06;
    const SPOT: f64 = 0.3978;

    fn job(work_h: u64, deadline_h: u64, overhead_min: u64) -> DeadlineJob {
        DeadlineJob::new(
            HOUR * u32::try_from(work_h).unwrap(),
            HOUR * u32::try_from(deadline_h).unwrap(),
            Duration::from_secs(overhead_min * 60),
        )
        .unwrap()
    }

    fn all_policies() -> Vec<Box<dyn DeadlinePolicy>> {
        vec![
            Box::new(Greedy::default()),
            Box::new(UniformProgress::default()),
            Box::new(DeadlineAware::default()),
        ]
    }

    fn run_all(job: &DeadlineJob, trace: &dyn Fn(u64) -> bool) -> Vec<DeadlineOutcome> {
        all_policies()
            .iter_mut()
            .map(|policy| run(job, policy.as_mut(), trace, TICK))
            .collect()
    }

    #[test]
    fn infeasible_jobs_are_rejected_with_the_numbers() {
        let error = DeadlineJob::new(HOUR * 10, HOUR * 10, Duration::from_secs(60)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("cannot finish even on on-demand")
        );
        assert_eq!(
            DeadlineJob::new(Duration::ZERO, HOUR, Duration::ZERO),
            Err(DeadlineJobError::Empty)
        );
    }

    #[test]
    fn always_available_spot_runs_everything_on_spot() {
        let job = job(48, 70, 6);
        for outcome in run_all(&job, &|_| true) {
            assert!(outcome.deadline_met, "{outcome:?}");
            assert_eq!(outcome.on_demand_time, Duration::ZERO, "{outcome:?}");
            assert_eq!(outcome.spot_time, job.work() + job.restart_overhead());
            assert_eq!(outcome.launches, 1);
        }
    }

    #[test]
    fn never_available_spot_still_meets_the_deadline_on_demand() {
        let job = job(48, 70, 6);
        for outcome in run_all(&job, &|_| false) {
            assert!(outcome.deadline_met, "{outcome:?}");
            assert_eq!(outcome.spot_time, Duration::ZERO);
            assert!(outcome.on_demand_time >= job.work());
        }
        let bound = omniscient_lower_bound(&job, &|_| false, TICK, OD, SPOT);
        assert!((bound - 48.0 * OD).abs() < 1e-9);
    }

    #[test]
    fn alternating_availability_meets_deadlines_and_orders_costs() {
        // Spot for 2 h, then out for 2 h, repeatedly.
        let trace = |index: u64| (index / 24).is_multiple_of(2);
        let job = job(48, 70, 6);
        let outcomes = run_all(&job, &trace);
        let bound = omniscient_lower_bound(&job, &trace, TICK, OD, SPOT);
        for outcome in &outcomes {
            assert!(outcome.deadline_met, "{outcome:?}");
            assert!(outcome.cost(OD, SPOT) >= bound - 1e-9, "{outcome:?}");
            assert!(outcome.cost(OD, SPOT) < job.work().as_secs_f64() / 3600.0 * OD);
        }
        let uniform = outcomes[1].cost(OD, SPOT);
        let aware = outcomes[2].cost(OD, SPOT);
        assert!(aware <= uniform + 1e-9, "aware {aware} uniform {uniform}");
    }

    #[test]
    fn a_long_outage_costs_deadline_aware_fewer_restarts() {
        // Out for the first 30 h, then available.
        let trace = |index: u64| index >= 30 * 12;
        let job = job(48, 70, 6);
        let outcomes = run_all(&job, &trace);
        for outcome in &outcomes {
            assert!(outcome.deadline_met, "{outcome:?}");
        }
        let (uniform, aware) = (&outcomes[1], &outcomes[2]);
        assert!(
            aware.launches < uniform.launches,
            "{aware:?} vs {uniform:?}"
        );
        assert!(aware.cost(OD, SPOT) <= uniform.cost(OD, SPOT));
    }

    #[test]
    fn adversarial_spot_that_vanishes_whenever_used_cannot_break_the_deadline() {
        // Available every other tick: every spot launch is preempted after one tick, so each spot
        // tick pays the full overhead of a 6-minute start inside a 5-minute tick: zero progress.
        let trace = |index: u64| index.is_multiple_of(2);
        let job = job(10, 12, 6);
        for outcome in run_all(&job, &trace) {
            assert!(outcome.deadline_met, "{outcome:?}");
            assert!(outcome.finished_at.unwrap() <= job.deadline());
        }
    }

    #[test]
    fn greedy_stays_on_demand_once_it_commits() {
        let trace = |index: u64| index >= 12 * 12;
        let job = job(10, 20, 6);
        let outcome = run(&job, &mut Greedy::default(), &trace, TICK);
        assert!(outcome.deadline_met);
        assert_eq!(outcome.spot_time, Duration::ZERO, "{outcome:?}");
        assert_eq!(outcome.launches, 1);
    }

    #[test]
    fn tight_deadlines_are_met_to_the_second() {
        // Slack of exactly one overhead: only on-demand from the first tick works.
        let job = DeadlineJob::new(
            HOUR * 5,
            HOUR * 5 + Duration::from_secs(360),
            Duration::from_secs(360),
        )
        .unwrap();
        for outcome in run_all(&job, &|index| index % 3 != 0) {
            assert!(outcome.deadline_met, "{outcome:?}");
        }
    }

    #[test]
    fn the_safety_threshold_moves_with_the_overhead() {
        let job = job(10, 11, 6);
        let state = JobState {
            elapsed: Duration::from_secs(3600 - 300 - 360 + 1),
            remaining: HOUR * 10,
            placement: Placement::Idle,
            pending_overhead: Duration::ZERO,
        };
        // Slack is 300 + 360 - 1 s: one more idle tick would leave less than d.
        assert!(must_use_on_demand(&job, &state, false, TICK));
        let earlier = JobState {
            elapsed: state.elapsed - Duration::from_secs(1),
            ..state
        };
        assert!(!must_use_on_demand(&job, &earlier, false, TICK));
    }
}
