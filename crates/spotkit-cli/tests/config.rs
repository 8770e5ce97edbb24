//! Configuration precedence and errors, through the real binary.

mod common;

use std::process::Output;

use common::spotkit;

/// Runs `spotkit agent` against an unreachable IMDS with a workload that exits at once.
fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = spotkit();
    c.args([
        "agent",
        "--imds-url",
        "http://127.0.0.1:9",
        "--vm-name",
        "vm",
    ])
    .args(args)
    .args(["--", "sh", "-c", "exit 5"]);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn a_bad_file_value_names_the_key_the_file_the_value_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[agent]\npoll_interval = \"50ms\"\n").unwrap();
    let out = agent(&["--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("key agent.poll_interval in"), "{err}");
    assert!(err.contains("agent.toml"), "{err}");
    assert!(err.contains("\"50ms\""), "{err}");
    assert!(err.contains("between 250ms and 30s"), "{err}");
}

#[test]
fn environment_overrides_the_file_and_flags_override_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[agent]\npoll_interval = \"50ms\"\n").unwrap();
    let config = path.to_str().unwrap();
    // File bad, env good: env wins, so the agent runs and exits with the workload's code.
    let out = agent(&["--config", config], &[("SPOTKIT_POLL_INTERVAL", "300ms")]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // Env bad, flag good: the flag wins.
    let out = agent(
        &["--config", config, "--poll-interval", "1s"],
        &[("SPOTKIT_POLL_INTERVAL", "fast")],
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    // Env bad, no flag: the error names the variable.
    let out = agent(&[], &[("SPOTKIT_POLL_INTERVAL", "fast")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("environment variable SPOTKIT_POLL_INTERVAL = \"fast\""));
}

#[test]
fn config_file_may_come_from_spotkit_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[agent]\n[agent.policy]\nFreeze = \"explode\"\n").unwrap();
    let out = agent(&[], &[("SPOTKIT_CONFIG", path.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("agent.policy.Freeze"), "{err}");
    assert!(err.contains("drain, hook or ignore"), "{err}");
}

#[test]
fn unknown_keys_and_bad_toml_are_errors_not_silently_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "[agent]\npoll_intervall = \"1s\"\n").unwrap();
    let out = agent(&["--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("poll_intervall"), "{}", stderr(&out));
    std::fs::write(&path, "[agent\n").unwrap();
    let out = agent(&["--config", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = agent(&["--config", "/nonexistent/agent.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/agent.toml"));
}

#[test]
fn conflicting_and_malformed_flags_are_rejected() {
    let out = agent(
        &[
            "--ready-check",
            "true",
            "--ready-url",
            "http://127.0.0.1:1/",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot both be set"));
    let out = agent(&["--notify-url", "not a url"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--notify-url"));
    let out = agent(&["--listen", "localhost"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = agent(&["--safety-margin", "40s"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("default notice"));
    let out = agent(&["--policy", "Freeze=drain,Preempt=ignore"], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/agent.toml");
    let out = agent(&["--config", path], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

#[test]
fn a_missing_workload_command_is_a_clear_error() {
    let out = spotkit()
        .args([
            "agent",
            "--imds-url",
            "http://127.0.0.1:9",
            "--vm-name",
            "vm",
            "--",
            "/no/such/program",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cannot start the workload"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn worker_reads_its_table_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let path = dir.path().join("spotkit.toml");
    std::fs::write(
        &path,
        format!(
            "[worker]\nqueue = \"sqlite:{db}?name=jobs\"\nstore = \"sqlite:{db}?name=fx\"\nconcurrency = 0\n",
            db = db.display()
        ),
    )
    .unwrap();
    let worker = |extra: &[&str], env: &[(&str, &str)]| {
        let mut c = spotkit();
        c.args([
            "worker",
            "--config",
            path.to_str().unwrap(),
            "--exit-when-empty",
        ])
        .args(extra)
        .args(["--", "true"]);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = worker(&[], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("key worker.concurrency in"), "{err}");
    assert!(err.contains("from 1 to 256"), "{err}");
    // The environment overrides the file; the queue and store come from the file.
    let out = worker(&[], &[("SPOTKIT_CONCURRENCY", "2")]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("completed 0"));
    let out = worker(&["--concurrency", "3", "--checkpoint-grace", "30s"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("flag --checkpoint-grace"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn worker_without_a_queue_says_how_to_give_one() {
    let out = spotkit()
        .args(["worker", "--", "true"])
        .env_remove("SPOTKIT_QUEUE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--queue is required") && err.contains("SPOTKIT_QUEUE"),
        "{err}"
    );
}
