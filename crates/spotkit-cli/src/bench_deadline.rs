//! `spotkit bench deadline`: the Can't Be Late setting over the real 1-node traces.
//!
//! Each 1-node file is its own trace (spot available or not per tick); each run starts the job at
//! a different offset into it. Every policy of [`spotkit_core::deadline`] runs the same job over
//! the same ticks, and the omniscient lower bound (foresight, no overhead) prices the best any
//! policy could do. Costs use the file's mapped Azure prices (see `bench_traces`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use spotkit_core::deadline::{
    DeadlineAware, DeadlineJob, DeadlinePolicy, Greedy, UniformProgress, omniscient_lower_bound,
    run,
};

use crate::bench_traces::{self, OneMeans};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct DeadlineBench {
    /// Folder of spot-traces files (skypilot-org/spot-traces layout).
    #[arg(long, default_value = "../shared/traces", env = "SPOTKIT_TRACES_DIR")]
    pub traces_dir: PathBuf,
    /// Job length C in hours of compute.
    #[arg(long, default_value_t = 48.0)]
    pub job_hours: f64,
    /// Deadline D in hours after the job's start (the paper's loose setting; tight is 52).
    #[arg(long, default_value_t = 70.0)]
    pub deadline_hours: f64,
    /// Restart overhead d in minutes, paid at every launch (the paper's small setting, 0.05 h).
    #[arg(long, default_value_t = 3.0)]
    pub overhead_minutes: f64,
    /// Hours between the start offsets of successive runs on one trace.
    #[arg(long, default_value_t = 12.0)]
    pub offset_step_hours: f64,
    /// How the 0/1 files read.
    #[arg(long, value_enum, default_value_t = OneMeans::Unavailable)]
    pub one_means: OneMeans,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

const POLICIES: [&str; 3] = ["greedy", "uniform-progress", "deadline-aware"];

fn policies() -> Vec<Box<dyn DeadlinePolicy>> {
    vec![
        Box::new(Greedy::default()),
        Box::new(UniformProgress::default()),
        Box::new(DeadlineAware::default()),
    ]
}

#[derive(Debug, Default, serde::Serialize)]
struct PolicySummary {
    policy: &'static str,
    runs: usize,
    deadlines_met: usize,
    mean_cost_vs_on_demand: f64,
    mean_cost_vs_lower_bound: f64,
    mean_launches: f64,
    mean_preemptions: f64,
}

#[derive(Debug, serde::Serialize)]
struct SetSummary {
    trace_set: String,
    files: usize,
    runs: usize,
    /// Runs whose window is longer than the trace, so the trace repeats.
    wrapped_runs: usize,
    mean_lower_bound_vs_on_demand: f64,
    policies: Vec<PolicySummary>,
    aware_vs_uniform_mean: f64,
    aware_vs_uniform_max: f64,
    runs_aware_costlier_than_uniform: usize,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    job_hours: f64,
    deadline_hours: f64,
    overhead_minutes: f64,
    offset_step_hours: f64,
    one_means: OneMeans,
    mapping: Vec<(String, String, f64, f64)>,
    sets: Vec<SetSummary>,
}

fn hours(h: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(h * 3600.0)
        .with_context(|| format!("{what} = {h} h is not a duration"))
}

pub fn bench_deadline(args: &DeadlineBench) -> anyhow::Result<u8> {
    let job = DeadlineJob::new(
        hours(args.job_hours, "--job-hours")?,
        hours(args.deadline_hours, "--deadline-hours")?,
        hours(args.overhead_minutes / 60.0, "--overhead-minutes")?,
    )?;
    let step = hours(args.offset_step_hours, "--offset-step-hours")?;
    if step.is_zero() {
        bail!("--offset-step-hours must be positive");
    }
    let sets = bench_traces::discover(&args.traces_dir)?;
    let mut report = Report {
        job_hours: args.job_hours,
        deadline_hours: args.deadline_hours,
        overhead_minutes: args.overhead_minutes,
        offset_step_hours: args.offset_step_hours,
        one_means: args.one_means,
        mapping: Vec::new(),
        sets: Vec::new(),
    };
    for set in sets
        .iter()
        .filter(|set| set.files.iter().all(|f| f.nodes == 1))
    {
        let mut summaries: Vec<PolicySummary> = POLICIES
            .iter()
            .map(|policy| PolicySummary {
                policy,
                ..PolicySummary::default()
            })
            .collect();
        let (mut runs, mut wrapped, mut bound_vs_od) = (0_usize, 0_usize, 0.0);
        let mut ratios = Vec::new();
        for file in &set.files {
            let offering = &file.offering;
            report.mapping.push((
                file.relative.clone(),
                offering.label(),
                offering.payg_per_hour,
                offering.spot_per_hour,
            ));
            let base =
                bench_traces::load(&args.traces_dir, file, args.one_means, 1, Duration::ZERO)?;
            let tick = Duration::from_secs(base.gap_seconds);
            let span = base.span();
            let offsets: Vec<Duration> = if span >= job.deadline() {
                let count = (span - job.deadline()).as_secs() / step.as_secs().max(1) + 1;
                (0..u32::try_from(count)?).map(|k| step * k).collect()
            } else {
                wrapped += 4;
                (0..4).map(|k| span / 4 * k).collect()
            };
            let on_demand_cost = (job.work() + job.restart_overhead()).as_secs_f64() / 3600.0
                * offering.payg_per_hour;
            for offset in offsets {
                let mut trace = base.clone();
                trace.start_offset = offset;
                let available = |index: u64| {
                    trace.capacity_at(Duration::from_secs(index * trace.gap_seconds)) > 0
                };
                let bound = omniscient_lower_bound(
                    &job,
                    &available,
                    tick,
                    offering.payg_per_hour,
                    offering.spot_per_hour,
                );
                runs += 1;
                bound_vs_od += bound / on_demand_cost;
                let mut costs = Vec::new();
                for (summary, mut policy) in summaries.iter_mut().zip(policies()) {
                    let outcome = run(&job, policy.as_mut(), &available, tick);
                    let cost = outcome.cost(offering.payg_per_hour, offering.spot_per_hour);
                    summary.runs += 1;
                    summary.deadlines_met += usize::from(outcome.deadline_met);
                    summary.mean_cost_vs_on_demand += cost / on_demand_cost;
                    summary.mean_cost_vs_lower_bound += cost / bound;
                    summary.mean_launches += f64::from(outcome.launches);
                    summary.mean_preemptions += f64::from(outcome.preemptions);
                    costs.push(cost);
                }
                ratios.push(costs[2] / costs[1]);
            }
        }
        #[allow(clippy::cast_precision_loss)]
        let n = runs.max(1) as f64;
        for summary in &mut summaries {
            summary.mean_cost_vs_on_demand /= n;
            summary.mean_cost_vs_lower_bound /= n;
            summary.mean_launches /= n;
            summary.mean_preemptions /= n;
        }
        report.sets.push(SetSummary {
            trace_set: set.name.clone(),
            files: set.files.len(),
            runs,
            wrapped_runs: wrapped,
            mean_lower_bound_vs_on_demand: bound_vs_od / n,
            policies: summaries,
            aware_vs_uniform_mean: ratios.iter().sum::<f64>() / n,
            aware_vs_uniform_max: ratios.iter().copied().fold(0.0, f64::max),
            runs_aware_costlier_than_uniform: ratios.iter().filter(|r| **r > 1.0 + 1e-9).count(),
        });
    }
    if report.sets.is_empty() {
        bail!(
            "no 1-node trace sets under {}: bench deadline needs 0/1 spot traces",
            args.traces_dir.display()
        );
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        Output::Table => print_table(&report),
    }
    let all_met = report
        .sets
        .iter()
        .all(|set| set.policies.iter().all(|p| p.deadlines_met == p.runs));
    Ok(if all_met { 0 } else { 1 })
}

fn print_table(report: &Report) {
    println!(
        "bench deadline: job C = {} h, deadline D = {} h, restart overhead d = {} min, \
         runs every {} h of trace, 0/1 files read 1 = {:?}",
        report.job_hours,
        report.deadline_hours,
        report.overhead_minutes,
        report.offset_step_hours,
        report.one_means
    );
    println!("cost/OD = mean cost over runs relative to all on-demand (C + d at PAYG);");
    println!("cost/LB = relative to the omniscient lower bound (foresight, no overhead).");
    println!();
    println!("mapping (trace file -> Azure offering, PAYG / spot USD/h):");
    for (file, offering, payg, spot) in &report.mapping {
        println!("  {file} -> {offering}  {payg:.4} / {spot:.4}");
    }
    for set in &report.sets {
        println!();
        println!(
            "{}: {} files, {} runs{}; lower bound = {:.3} x on-demand",
            set.trace_set,
            set.files,
            set.runs,
            if set.wrapped_runs > 0 {
                format!(
                    " ({} on a repeated trace: shorter than D)",
                    set.wrapped_runs
                )
            } else {
                String::new()
            },
            set.mean_lower_bound_vs_on_demand
        );
        println!(
            "  {:<18} {:>10} {:>9} {:>9} {:>9} {:>11}",
            "policy", "met", "cost/OD", "cost/LB", "launches", "preemptions"
        );
        for p in &set.policies {
            println!(
                "  {:<18} {:>10} {:>9.3} {:>9.3} {:>9.1} {:>11.1}",
                p.policy,
                format!("{}/{}", p.deadlines_met, p.runs),
                p.mean_cost_vs_on_demand,
                p.mean_cost_vs_lower_bound,
                p.mean_launches,
                p.mean_preemptions
            );
        }
        let all_met = set.policies.iter().all(|p| p.deadlines_met == p.runs);
        let cheaper = set.aware_vs_uniform_mean <= 1.0;
        println!(
            "  deadline-aware / uniform-progress: mean {:.4}, max {:.3}, costlier in {} of {} runs",
            set.aware_vs_uniform_mean,
            set.aware_vs_uniform_max,
            set.runs_aware_costlier_than_uniform,
            set.runs
        );
        println!(
            "  goal (every deadline met; deadline-aware mean cost <= uniform-progress): {}",
            if all_met && cheaper { "met" } else { "NOT met" }
        );
    }
}
