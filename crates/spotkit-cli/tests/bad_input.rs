//! Bad input the other config tests (config.rs) do not cover: worker file type errors and
//! unknown tables, bad worker and agent flag values named with their value and fix, unknown
//! flags, and that neither a refused configuration nor a malformed message loses a message
//! (docs/exit-codes.md).

mod common;

use std::path::Path;
use std::process::Output;

use common::spotkit;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn queue_url(db: &Path, name: &str) -> String {
    format!("sqlite:{}?name={name}", db.display())
}

fn run(args: &[&str]) -> Output {
    spotkit()
        .args(args)
        .env_remove("SPOTKIT_QUEUE")
        .env_remove("SPOTKIT_STORE")
        .env_remove("SPOTKIT_CONFIG")
        .output()
        .unwrap()
}

fn stats(queue: &str) -> String {
    let out = run(&["queue", "stats", "--queue", queue]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn worker_file_type_errors_and_unknown_tables_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spotkit.toml");
    for (text, expect) in [
        ("[worker]\nconcurrency = \"eight\"\n", "concurrency"),
        ("[worker]\nlease = 60\n", "lease"),
        ("[worker]\nqueu = \"sqlite:x\"\n", "queu"),
        ("[wroker]\nqueue = \"sqlite:x\"\n", "wroker"),
    ] {
        std::fs::write(&path, text).unwrap();
        let out = run(&["worker", "--config", path.to_str().unwrap(), "--", "true"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(expect), "{text}: {err}");
        assert!(err.contains("spotkit.toml"), "{text}: {err}");
    }
}

#[test]
fn bad_flag_values_name_the_flag_the_value_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let queue = queue_url(&db, "jobs");
    let store = queue_url(&db, "fx");
    for (flag, value, fix) in [
        ("--lease", "1s", "choose a value in that range"),
        ("--lease", "soon", "write it like 1s"),
        ("--max-dequeue", "0", "choose a value in that range"),
        ("--concurrency", "many", "choose a value in that range"),
    ] {
        let out = run(&[
            "worker", "--queue", &queue, "--store", &store, flag, value, "--", "true",
        ]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(&format!("flag {flag}")), "{err}");
        assert!(err.contains(&format!("{value:?}")), "{err}");
        assert!(err.contains(fix), "{err}");
    }
    let out = run(&[
        "agent",
        "--imds-url",
        "http://127.0.0.1:9",
        "--vm-name",
        "vm",
        "--poll-interval",
        "fast",
        "--",
        "true",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("flag --poll-interval"), "{err}");
    assert!(err.contains("\"fast\""), "{err}");
    assert!(err.contains("write it like 1s"), "{err}");
}

#[test]
fn unknown_flags_and_values_outside_a_fixed_set_exit_2_naming_them() {
    for (args, expect) in [
        (&["agent", "--pol-interval", "1s"][..], "--pol-interval"),
        (&["worker", "--concurency", "2"][..], "--concurency"),
        (&["--log-format", "yaml", "agent"][..], "yaml"),
    ] {
        let out = run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
    }
}

#[test]
fn a_refused_configuration_leaves_every_message_on_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let queue = queue_url(&db, "jobs");
    let store = queue_url(&db, "fx");
    let out = run(&["queue", "put", "--queue", &queue, "a", "b", "c"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&[
        "worker",
        "--queue",
        &queue,
        "--store",
        &store,
        "--shutdown-budget",
        "1s",
        "--checkpoint-grace",
        "5s",
        "--exit-when-empty",
        "--",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stats(&queue).contains("messages 3"), "{}", stats(&queue));
}

#[test]
fn a_malformed_envelope_goes_to_the_poison_queue_with_its_reason_and_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let queue = queue_url(&db, "jobs");
    let store = queue_url(&db, "fx");
    let malformed = r#"{"spotkit_envelope":1,"key":"order-7","body_b64":"%%% not base64"}"#;
    let out = run(&["queue", "put", "--queue", &queue, malformed, "fine"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&[
        "worker",
        "--queue",
        &queue,
        "--store",
        &store,
        "--exit-when-empty",
        "--",
        "cat",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let counts = stats(&queue);
    assert!(counts.contains("messages 0"), "{counts}");
    assert!(counts.contains("poison_messages 1"), "{counts}");
    let out = run(&["queue", "peek", "--queue", &queue_url(&db, "jobs-poison")]);
    let shown = stdout(&out);
    assert!(
        shown.contains("POISON (malformed spotkit envelope"),
        "{shown}"
    );
    assert!(
        shown.contains("body_b64"),
        "the reason names the field: {shown}"
    );
    assert!(
        shown.contains(malformed),
        "the original bytes are kept: {shown}"
    );
}

#[test]
fn the_orchestrator_refuses_to_listen_beyond_loopback_without_a_token_and_short_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool.toml");
    std::fs::write(
        &pool,
        "name = \"p\"\nresource_group = \"rg\"\n[target]\nvms = 1\n[[candidates]]\nsize = \"Standard_D2s_v5\"\nregion = \"eastus\"\n[template]\nimage = \"Canonical:ubuntu-24_04-lts:server:latest\"\n",
    )
    .unwrap();
    let pool = pool.to_str().unwrap();
    let orchestrate = |extra: &[&str]| {
        let mut args = vec![
            "orchestrate",
            "--pool",
            pool,
            "--arm-url",
            "http://127.0.0.1:9",
            "--credential",
            "static-token",
        ];
        args.extend_from_slice(extra);
        spotkit()
            .args(&args)
            .env_remove("SPOTKIT_ORCHESTRATOR_TOKEN")
            .env_remove("SPOTKIT_ORCHESTRATOR_TOKEN_FILE")
            .output()
            .unwrap()
    };
    let out = orchestrate(&["--listen", "0.0.0.0:0"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("without an endpoint token"), "{err}");
    assert!(err.contains("--token-file"), "{err}");

    let short = dir.path().join("short");
    std::fs::write(&short, "hunter2\n").unwrap();
    let out = orchestrate(&[
        "--listen",
        "0.0.0.0:0",
        "--token-file",
        short.to_str().unwrap(),
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("at least 16"), "{err}");
    assert!(!err.contains("hunter2"), "the token was printed: {err}");

    let out = orchestrate(&["--token-file", "/nonexistent/token"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/nonexistent/token"), "{err}");
}
