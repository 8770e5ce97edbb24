//! Security properties of the binary, checked from the outside (docs/security.md):
//! - a recognisable fake secret given as a SAS signature, a storage account key and Entra client
//!   secret never shows on stdout or stderr, even at debug log level;
//! - IMDS is reached directly whatever `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` say;
//! - listeners default to loopback, and an address without a host is refused.

mod common;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Agent, Emulator, eventually, exit_code, polite_workload, spotkit};

const VM: &str = "vm-security";

/// `SPOTKITFAKESECRET` + 16 random hex digits + `AAA`: unique per run, easy to grep for, and
/// valid base64 (36 characters), so it can also serve as a storage account key.
fn fake_secret() -> String {
    let random = RandomState::new().build_hasher().finish();
    format!("SPOTKITFAKESECRET{random:016x}AAA")
}

/// A TCP listener that counts the connections it accepts (and closes them).
async fn connection_recorder() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, count)
}

/// A fake Azure Storage endpoint that records every request target and refuses them all with
/// `AuthenticationFailed`, as Azure does for a bad signature.
async fn refusing_storage() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let recorded = Arc::clone(&recorded);
        async move {
            recorded.lock().unwrap().push(uri.to_string());
            (
                axum::http::StatusCode::FORBIDDEN,
                [("x-ms-error-code", "AuthenticationFailed")],
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.</Message></Error>",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Runs `cmd` for at most `limit`, then kills it; returns exit code (or None) and all output.
async fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let err_path = dir.path().join("err");
    let mut child = cmd
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = Duration::ZERO;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(exit_code(status));
        }
        if waited >= limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    };
    let output =
        std::fs::read_to_string(&out_path).unwrap() + &std::fs::read_to_string(&err_path).unwrap();
    (code, output)
}

fn with_secret_env(cmd: &mut Command, secret: &str) {
    cmd.env("SPOTKIT_LOG", "debug")
        .env("AZURE_CLIENT_SECRET", secret)
        .env("AZURE_CLIENT_ID", "00000000-0000-0000-0000-0000000000c1")
        .env("AZURE_TENANT_ID", "00000000-0000-0000-0000-0000000000d1");
}

#[tokio::test]
async fn a_fake_secret_never_appears_in_any_output_at_debug_level() {
    let secret = fake_secret();
    let (storage, seen) = refusing_storage().await;
    let sas =
        format!("sv=2025-11-05&ss=bq&srt=sco&sp=rwdlacup&se=2099-01-01T00:00:00Z&sig={secret}");
    let queue = format!("{storage}/devstoreaccount1/jobs?{sas}");
    let store = format!("{storage}/devstoreaccount1/effects?{sas}");
    let mut transcripts = Vec::new();

    // 1. `queue put` with a SAS URL: fails on the 403, and must say so without the signature.
    let mut cmd = spotkit();
    cmd.args(["queue", "put", "--queue", &queue, "hello"]);
    with_secret_env(&mut cmd, &secret);
    let (code, out) = run_bounded(cmd, Duration::from_secs(20)).await;
    assert_eq!(
        code,
        Some(1),
        "a refused request is a runtime failure: {out}"
    );
    transcripts.push(("queue put (SAS)", out));

    // 2. The same with the secret as the account key of a connection string.
    let mut cmd = spotkit();
    cmd.args(["queue", "put", "--queue", &format!("{storage}/devstoreaccount1/jobs"), "hello"])
        .env(
            "AZURE_STORAGE_CONNECTION_STRING",
            format!(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={secret};QueueEndpoint={storage}/devstoreaccount1;BlobEndpoint={storage}/devstoreaccount1;"
            ),
        );
    with_secret_env(&mut cmd, &secret);
    let (_, out) = run_bounded(cmd, Duration::from_secs(20)).await;
    transcripts.push(("queue put (account key)", out));

    // 3. The worker with SAS URLs for its queue and store, until it gives up or 5 s pass.
    let mut cmd = spotkit();
    cmd.args(["worker", "--queue", &queue, "--store", &store, "--", "cat"]);
    with_secret_env(&mut cmd, &secret);
    let (_, out) = run_bounded(cmd, Duration::from_secs(5)).await;
    transcripts.push(("worker (SAS)", out));

    // 4. The agent through a preemption, with a drain URL that carries a signature and fails.
    let emulator = Emulator::start(VM);
    let (dead_end, _) = connection_recorder().await;
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 0);
    let drain_url = format!("{dead_end}/drain?sig={secret}");
    let mut agent = Agent::spawn_in(
        dir,
        &emulator,
        &["--vm-name", VM, "--drain-url", &drain_url],
        Some(workload),
        &[
            ("SPOTKIT_LOG", "debug"),
            ("AZURE_CLIENT_SECRET", &secret),
            ("AZURE_STORAGE_KEY", &secret),
        ],
    );
    agent.wait_started(&emulator).await;
    emulator.preempt(VM, 30).await;
    let status = agent.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(exit_code(status), 0, "{}", agent.log());
    transcripts.push(("agent", agent.log()));

    // The secret did reach the wire: the test would notice a leak.
    assert!(
        seen.lock().unwrap().iter().any(|uri| uri.contains(&secret)),
        "the fake storage never saw the SAS signature; requests: {:?}",
        seen.lock().unwrap()
    );
    for (what, output) in &transcripts {
        assert!(
            !output.is_empty(),
            "{what} printed nothing; the scan would prove nothing"
        );
        assert!(
            !output.contains(&secret),
            "{what} printed the secret:\n{output}"
        );
    }
    assert!(
        transcripts.iter().any(|(_, o)| o.contains("DEBUG")),
        "debug logging was not on"
    );
}

#[tokio::test]
async fn imds_is_reached_directly_whatever_the_proxy_variables_say() {
    let (proxy, proxied) = connection_recorder().await;
    let emulator = Emulator::start(VM);
    let dir = tempfile::tempdir().unwrap();
    let workload = polite_workload(dir.path(), 0);
    let mut agent = Agent::spawn_in(
        dir,
        &emulator,
        &["--vm-name", VM],
        Some(workload),
        &[
            ("HTTP_PROXY", &proxy),
            ("HTTPS_PROXY", &proxy),
            ("ALL_PROXY", &proxy),
            ("http_proxy", &proxy),
            ("https_proxy", &proxy),
            ("all_proxy", &proxy),
            ("NO_PROXY", ""),
            ("no_proxy", ""),
        ],
    );
    agent.wait_started(&emulator).await;
    eventually("three polls", Duration::from_secs(10), async || {
        (emulator.scheduled_event_gets().await >= 3).then_some(())
    })
    .await;
    assert_eq!(
        proxied.load(Ordering::SeqCst),
        0,
        "the agent sent IMDS traffic to the proxy; log:\n{}",
        agent.log()
    );
    emulator.preempt(VM, 30).await;
    assert_eq!(exit_code(agent.wait_exit(Duration::from_secs(20)).await), 0);
    assert_eq!(proxied.load(Ordering::SeqCst), 0);

    // The recorder does see a client that honours the proxy: the zero above means something.
    let via_proxy = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&proxy).unwrap())
        .build()
        .unwrap();
    let _ = via_proxy.get(&emulator.url).send().await;
    assert!(proxied.load(Ordering::SeqCst) >= 1);
}

/// The `[default: …]` a subcommand's `--help` shows for `flag`.
fn help_default(args: &[&str], flag: &str) -> String {
    let out = spotkit().args(args).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let section = help
        .split(flag)
        .nth(1)
        .unwrap_or_else(|| panic!("{args:?} --help has no {flag}:\n{help}"));
    let default = section
        .split("[default: ")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("{args:?} {flag} shows no default:\n{help}"));
    default.to_string()
}

#[test]
fn listeners_default_to_loopback() {
    for args in [&["imds-emulator"][..], &["sim", "serve"][..]] {
        let default = help_default(args, "--listen");
        let addr: std::net::SocketAddr = default
            .parse()
            .unwrap_or_else(|e| panic!("{args:?} --listen default {default:?}: {e}"));
        assert!(
            addr.ip().is_loopback(),
            "{args:?} listens on {addr} by default"
        );
    }
    // The agent serves health and metrics only when asked (--listen has no default) ...
    let out = spotkit().args(["agent", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let listen = help.split("--listen").nth(1).unwrap_or_default();
    let listen = listen.split("\n  -").next().unwrap_or_default();
    assert!(
        !listen.contains("[default:"),
        "agent --listen must not default to an address: {listen}"
    );
}

#[test]
fn the_sim_server_binds_loopback_when_no_address_is_given() {
    let mut child = spotkit()
        .args(["sim", "serve"])
        .env_remove("SPOTKIT_SIM_LISTEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );
}

#[test]
fn an_agent_listen_address_without_a_host_is_refused() {
    for bad in ["9464", ":9464", "localhost"] {
        let out = spotkit()
            .args(["agent", "--vm-name", VM, "--listen", bad, "--", "true"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--listen {bad}: {err}");
        assert!(err.contains("--listen"), "{err}");
        assert!(err.contains(&format!("{bad:?}")), "{err}");
        assert!(err.contains("127.0.0.1:9464"), "the fix: {err}");
    }
}
