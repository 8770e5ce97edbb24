//! `spotkit demo`: the agent and the worker on one machine, through a spot eviction, in about
//! 25 seconds.
//!
//! A queue of jobs in an embedded SQLite file; "VM 1" runs `spotkit agent -- spotkit worker`
//! against its own IMDS emulator. A Freeze comes and goes (nothing stops), then a Preempt: the
//! worker stops taking work, hands back what it had not started, its running handlers checkpoint,
//! the agent approves the event early. "VM 2" then starts, resumes the interrupted jobs from their
//! checkpoints and finishes the queue. The summary checks that nothing was lost or done twice.
#![allow(clippy::disallowed_methods)] // the demo narrates real elapsed time
#![allow(clippy::cast_precision_loss)] // milliseconds shown as seconds

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use spotkit_cloud::{ObjectStore, Queue, SystemClock};

use crate::Failure;
use crate::admin::EmulatorProcess;
use crate::backends::{open_queue, open_store};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Notice the Preempt gives (Azure gives at best 30 s, often less).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    notice: Duration,
    /// Jobs on the queue.
    #[arg(long, default_value_t = 16)]
    jobs: u32,
}

pub fn main(args: &DemoArgs) -> Result<u8, Failure> {
    if args.notice < Duration::from_secs(4) || args.notice > Duration::from_secs(120) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--notice {}: choose between 4s and 120s",
            humantime::format_duration(args.notice)
        )));
    }
    if !(1..=1000).contains(&args.jobs) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--jobs {}: choose between 1 and 1000",
            args.jobs
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    runtime.block_on(run(args)).map_err(Failure::runtime)
}

fn say(text: &str) {
    println!("\n>>> {text}");
}

/// Each job counts 40 steps of 100 ms, checkpointing its step on SIGTERM and resuming from it.
const HANDLER: &str = r#"
body=$(cat); i=$(cat "$SPOTKIT_CHECKPOINT_FILE" 2>/dev/null || echo 0); from=$i
[ "$i" -gt 0 ] && echo "    [handler] $body: resuming at step $i (checkpoint from the evicted VM)"
trap 'echo $i > "$SPOTKIT_CHECKPOINT_FILE.tmp"; mv "$SPOTKIT_CHECKPOINT_FILE.tmp" "$SPOTKIT_CHECKPOINT_FILE"; echo "    [handler] $body: SIGTERM, checkpoint at step $i"; exit 75' TERM
while [ $i -lt 40 ]; do sleep 0.1; i=$((i+1)); done
echo "$SPOTKIT_IDEMPOTENCY_KEY" >> "$DEMO_ATTEMPTS"
printf '%s done (resumed from step %s)' "$body" "$from" > "$SPOTKIT_RESULT_FILE"
"#;

fn vm(
    exe: &Path,
    emulator: &EmulatorProcess,
    vm_name: &str,
    db: &Path,
    dir: &Path,
    batch: bool,
) -> anyhow::Result<Child> {
    let mut c = Command::new(exe);
    c.args([
        "agent",
        "--imds-url",
        &emulator.url,
        "--vm-name",
        vm_name,
        "--poll-interval",
        "1s",
        "--safety-margin",
        "2s",
    ])
    .args([
        "--on-event",
        "echo \"    [agent hook] $SPOTKIT_EVENT_TYPE: nothing to stop, carry on\"",
    ])
    .arg("--")
    .arg(exe)
    .args(["worker", "--queue"])
    .arg(format!("sqlite:{}?name=jobs", db.display()))
    .arg("--store")
    .arg(format!("sqlite:{}?name=effects", db.display()))
    .args([
        "--concurrency",
        "4",
        "--prefetch",
        "2",
        "--shutdown-budget",
        "4s",
        "--checkpoint-grace",
        "2s",
    ]);
    if batch {
        c.arg("--exit-when-empty");
    }
    c.args(["--scratch"])
        .arg(dir)
        .args(["--", "sh", "-c", HANDLER])
        .env("DEMO_ATTEMPTS", dir.join("attempts"))
        .env("SPOTKIT_LOG", "info,spotkit_worker=warn")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    c.spawn().context("cannot start the agent")
}

async fn wait(
    child: &mut Child,
    limit: Duration,
    what: &str,
) -> anyhow::Result<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            bail!(
                "{what} did not finish within {}",
                humantime::format_duration(limit)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn run(args: &DemoArgs) -> anyhow::Result<u8> {
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("work.db");
    let clock: Arc<dyn spotkit_cloud::Clock> = Arc::new(SystemClock);
    let queue = open_queue(&format!("sqlite:{}?name=jobs", db.display()), clock.clone())?;
    let store = open_store(&format!("sqlite:{}?name=effects", db.display()), clock)?;
    queue.create_if_missing().await?;
    store.create_if_missing().await?;
    for i in 0..args.jobs {
        queue
            .send(format!("job-{i}").as_bytes(), Duration::ZERO)
            .await?;
    }
    say(&format!(
        "{} jobs on an embedded queue ({}); each takes 2 s",
        args.jobs,
        db.display()
    ));

    say(
        "VM 1: IMDS emulator on 127.0.0.1, `spotkit agent -- spotkit worker` (4 handlers, 2 prefetched)",
    );
    let emulator = EmulatorProcess::start("demo-spot-vm-1")?;
    let mut vm1 = vm(&exe, &emulator, "demo-spot-vm-1", &db, dir.path(), false)?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    say("Azure announces a Freeze (a few seconds' pause): the worker must keep going");
    emulator.schedule("Freeze", "demo-spot-vm-1", 2).await?;
    // Land the eviction in the middle of a batch of jobs, so some are mid-flight.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    if vm1.try_wait()?.is_some() {
        bail!("VM 1 stopped on a Freeze; it must not");
    }

    let notice = args.notice.as_secs();
    say(&format!("Azure evicts VM 1: Preempt with {notice}s notice"));
    let preempted_at = Instant::now();
    let event_id = emulator
        .schedule("Preempt", "demo-spot-vm-1", notice)
        .await?;
    let scheduled_ms = unix_ms();
    let status = wait(
        &mut vm1,
        args.notice + Duration::from_secs(10),
        "VM 1's drain",
    )
    .await?;
    let drained = preempted_at.elapsed();
    let approved_ms = emulator
        .approvals()
        .await?
        .iter()
        .find(|a| a["event_ids"].to_string().contains(&event_id))
        .and_then(|a| a["at_unix_ms"].as_i64());
    let done_on_vm1 = store.list("ledger/").await?.len();
    let checkpoints = store.list("checkpoints/").await?.len();
    let back_on_queue = queue.approximate_len().await?;

    say("VM 2 starts (a replacement, elsewhere) and works the queue to the end");
    let emulator2 = EmulatorProcess::start("demo-spot-vm-2")?;
    let mut vm2 = vm(&exe, &emulator2, "demo-spot-vm-2", &db, dir.path(), true)?;
    let status2 = wait(&mut vm2, Duration::from_secs(120), "VM 2").await?;

    let effects = store.list("ledger/").await?;
    let mut resumed = 0;
    for key in &effects {
        if let Some(obj) = store.get(key).await?
            && !String::from_utf8_lossy(&obj.body).ends_with("from step 0)")
        {
            resumed += 1;
        }
    }
    let attempts = std::fs::read_to_string(dir.path().join("attempts")).unwrap_or_default();
    let mut keys: Vec<&str> = attempts.lines().collect();
    let handler_runs = keys.len();
    keys.sort_unstable();
    keys.dedup();
    let lost =
        u64::from(args.jobs).saturating_sub(effects.len() as u64) + queue.approximate_len().await?;

    say("what happened");
    println!(
        "    VM 1: drained {:.1} s after the Preempt appeared (exit {:?}); {done_on_vm1} jobs done, {back_on_queue} back on the queue, {checkpoints} of them with a checkpoint",
        drained.as_secs_f64(),
        status.code()
    );
    match approved_ms {
        Some(t) => println!(
            "    the Preempt was approved {:.1} s before NotBefore: Azure need not wait out the notice",
            (i64::try_from(args.notice.as_millis()).unwrap_or(0) - (t - scheduled_ms)) as f64
                / 1000.0
        ),
        None => println!("    the Preempt was NOT approved"),
    }
    println!(
        "    VM 2: finished the rest (exit {:?}); {resumed} jobs resumed from a checkpoint",
        status2.code()
    );
    println!(
        "    jobs {}   effects committed {}   effects duplicated 0 (create-only ledger)   messages lost {lost}   handler completions {handler_runs}",
        args.jobs,
        effects.len()
    );
    let ok = status.success()
        && status2.success()
        && approved_ms.is_some()
        && lost == 0
        && effects.len() == args.jobs as usize;
    println!(
        "\n{}",
        if ok {
            "demo OK: evicted mid-work, nothing lost, nothing done twice"
        } else {
            "demo FAILED"
        }
    );
    Ok(if ok { 0 } else { 1 })
}

fn unix_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
