//! `spotkit demo`: the whole agent story on one machine, in about 15 seconds.
//!
//! Starts the IMDS emulator and an agent supervising a small workload that processes items and
//! checkpoints on SIGTERM, then plays a Freeze (the workload must keep running) and a Preempt
//! (the workload must checkpoint and stop before the deadline, and the event must be approved
//! early), and prints what happened.
#![allow(clippy::disallowed_methods)] // the demo narrates real elapsed time

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::Failure;
use crate::admin::EmulatorProcess;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Notice the Preempt gives (Azure gives at best 30 s, often less).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    notice: Duration,
}

pub fn main(args: &DemoArgs) -> Result<u8, Failure> {
    if args.notice < Duration::from_secs(2) || args.notice > Duration::from_secs(120) {
        return Err(Failure::usage(anyhow::anyhow!(
            "--notice {}: choose between 2s and 120s",
            humantime::format_duration(args.notice)
        )));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Failure::runtime)?;
    runtime.block_on(run(args)).map_err(Failure::runtime)
}

fn say(text: &str) {
    println!("\n>>> {text}");
}

async fn run(args: &DemoArgs) -> anyhow::Result<u8> {
    let vm = "demo-spot-vm-1";
    let exe = std::env::current_exe()?;
    let dir = tempfile::tempdir()?;
    let checkpoint = dir.path().join("checkpoint");
    let term_mark = dir.path().join("term");
    say("starting a local IMDS emulator (Scheduled Events + instance metadata) on 127.0.0.1");
    let emulator = EmulatorProcess::start(vm)?;
    println!("    {}", emulator.url);

    // The workload: processes an item every 300 ms, saves a checkpoint after each; on SIGTERM it
    // records the time and exits cleanly. Its checkpoint would live in blob storage in production.
    let workload = format!(
        "i=$(cat {cp} 2>/dev/null || echo 0); \
         trap 'date +%s%3N > {tm}; echo \"    [workload] SIGTERM: checkpoint at item $i saved, exiting\"; exit 0' TERM; \
         echo \"    [workload] warm, resuming from item $i\"; \
         while [ $i -lt 100000 ]; do sleep 0.3; i=$((i+1)); echo $i > {cp}; \
         if [ $((i % 10)) -eq 0 ]; then echo \"    [workload] processed item $i\"; fi; done",
        cp = checkpoint.display(),
        tm = term_mark.display()
    );
    say("starting `spotkit agent` supervising the workload (poll every 1s, safety margin 2s)");
    let mut agent = Command::new(&exe)
        .args([
            "agent",
            "--imds-url",
            &emulator.url,
            "--poll-interval",
            "1s",
            "--safety-margin",
            "2s",
        ])
        .args([
            "--on-event",
            "echo \"    [hook] $SPOTKIT_EVENT_TYPE $SPOTKIT_EVENT_ID: nothing to stop, carry on\"",
        ])
        .args(["--", "sh", "-c", &workload])
        .env("SPOTKIT_LOG", "info")
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the agent")?;

    tokio::time::sleep(Duration::from_secs(4)).await;
    say("Azure announces a Freeze (a few seconds' pause): the workload must keep running");
    emulator.schedule("Freeze", vm, 2).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    if agent.try_wait()?.is_some() {
        bail!("the agent stopped on a Freeze; it must not");
    }

    let notice = args.notice.as_secs();
    say(&format!(
        "Azure evicts the spot VM: Preempt with {notice}s notice"
    ));
    let started = Instant::now();
    let event_id = emulator.schedule("Preempt", vm, notice).await?;
    let scheduled_ms = unix_ms();
    let status = loop {
        if let Some(status) = agent.try_wait()? {
            break status;
        }
        if started.elapsed() > args.notice + Duration::from_secs(10) {
            let _ = agent.kill();
            bail!("the agent did not finish within the notice");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let term_ms: Option<i64> = std::fs::read_to_string(&term_mark)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let approvals = emulator.approvals().await?;
    let approved_ms = approvals
        .iter()
        .find(|a| a["event_ids"].to_string().contains(&event_id))
        .and_then(|a| a["at_unix_ms"].as_i64());
    let items: u64 = std::fs::read_to_string(&checkpoint)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);

    say("what happened");
    let notice_ms = i64::try_from(args.notice.as_millis()).unwrap_or(i64::MAX);
    match term_ms {
        Some(t) => println!(
            "    SIGTERM reached the workload {} ms after the Preempt appeared",
            t - scheduled_ms
        ),
        None => println!("    the workload never recorded SIGTERM"),
    }
    match approved_ms {
        Some(t) => println!(
            "    event {event_id} approved {} ms after it appeared, {:.1} s before NotBefore: Azure need not wait",
            t - scheduled_ms,
            (notice_ms - (t - scheduled_ms)) as f64 / 1000.0
        ),
        None => println!("    the event was NOT approved"),
    }
    println!(
        "    workload exit code {:?}; checkpoint holds item {items}: the next VM resumes there",
        status.code()
    );
    let ok = status.success() && term_ms.is_some() && approved_ms.is_some();
    println!(
        "\n{}",
        if ok {
            "demo OK: drained, checkpointed and approved inside the notice"
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
