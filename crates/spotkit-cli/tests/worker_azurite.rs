//! `spotkit queue` and `spotkit worker` on Azure Storage's protocol (Azurite), credentials from
//! AZURE_STORAGE_CONNECTION_STRING as the Azure SDKs read them.

mod common;

use std::process::Output;

use common::spotkit;

const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn endpoint(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is unset: run ./scripts/test (it starts Azurite) or eval \"$(scripts/azurite start)\"")
    })
}

fn connection_string() -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};QueueEndpoint={};BlobEndpoint={};",
        endpoint("SPOTKIT_AZURITE_QUEUE"),
        endpoint("SPOTKIT_AZURITE_BLOB")
    )
}

fn run(args: &[&str]) -> Output {
    let out = spotkit()
        .env("AZURE_STORAGE_CONNECTION_STRING", connection_string())
        .env("SPOTKIT_LOG", "warn")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "spotkit {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn worker_drains_an_azure_queue_and_commits_effects_in_blob_storage() {
    let suffix = format!("{:x}", std::process::id());
    let queue = format!("{}/jobs-{suffix}", endpoint("SPOTKIT_AZURITE_QUEUE"));
    let store = format!("{}/effects-{suffix}", endpoint("SPOTKIT_AZURITE_BLOB"));
    run(&[
        "queue",
        "put",
        "--queue",
        &queue,
        "--count",
        "30",
        "--template",
        "job-{i}",
    ]);
    run(&[
        "queue", "put", "--queue", &queue, "--key", "order-1", "pay", "pay",
    ]);
    run(&["queue", "put", "--queue", &queue, "fail-me"]);
    let stats = run(&["queue", "stats", "--queue", &queue, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["messages"], 33);

    let out = run(&[
        "worker",
        "--queue",
        &queue,
        "--store",
        &store,
        "--exit-when-empty",
        "--max-dequeue",
        "1",
        "--lease",
        "5s",
        "--",
        "sh",
        "-c",
        "body=$(cat); [ \"$body\" = fail-me ] && exit 1; printf 'did %s' \"$body\" > \"$SPOTKIT_RESULT_FILE\"",
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("completed 31"), "{summary}");
    assert!(summary.contains("already_committed 1"), "{summary}");

    // The failed one comes back after its retry delay (at most 1 s on a first failure) and is
    // then poisoned (max dequeue 1).
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let out = run(&[
        "worker",
        "--queue",
        &queue,
        "--store",
        &store,
        "--exit-when-empty",
        "--max-dequeue",
        "1",
        "--lease",
        "5s",
        "--",
        "true",
    ]);
    let stats = run(&["queue", "stats", "--queue", &queue, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(
        stats["messages"],
        0,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(stats["poison_messages"], 1);
    let peek = run(&["queue", "peek", "--queue", &format!("{queue}-poison")]);
    assert!(
        String::from_utf8_lossy(&peek.stdout).contains("POISON (dequeued 2 times"),
        "{}",
        String::from_utf8_lossy(&peek.stdout)
    );
}
