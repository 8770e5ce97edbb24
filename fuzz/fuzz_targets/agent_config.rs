//! The agent/worker config file on arbitrary text: TOML parsing, then every validator the
//! `agent` and `worker` subcommands run on the file's values.
//!
//! Beyond "no panic": a file the parser refuses gets an error naming the file; a value a
//! validator refuses gets an error naming the dotted key, the file and the value as written.
#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use spotkit_cli::config::{
    ConfigError, LoadedFile, Sourced, duration, number, parse_config_text, reactions, socket_addr,
    url,
};

const FILE: &str = "/etc/spotkit/fuzz.toml";

fn check(loaded: &LoadedFile, key: &str, value: &str, result: Result<(), ConfigError>) {
    if let Err(err) = result {
        let text = err.to_string();
        assert!(text.contains(key), "{text} does not name {key}");
        assert!(text.contains(FILE), "{text} does not name the file");
        assert!(
            text.contains(&format!("{value:?}")),
            "{text} does not quote {value:?}"
        );
        let _ = loaded;
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new(FILE);
    let config = match parse_config_text(path, &text) {
        Ok(c) => c,
        Err(err) => {
            assert!(err.to_string().contains(FILE), "{err}");
            return;
        }
    };
    let loaded = LoadedFile {
        path: path.to_path_buf(),
        config,
    };
    let sourced = |key: &str, value: &str| Sourced {
        value: value.to_string(),
        origin: loaded.origin(key),
    };
    let agent = &loaded.config.agent;
    for (key, value) in [
        ("agent.poll_interval", &agent.poll_interval),
        ("agent.poll_timeout", &agent.poll_timeout),
        ("agent.first_poll_timeout", &agent.first_poll_timeout),
        ("agent.safety_margin", &agent.safety_margin),
        ("agent.default_notice", &agent.default_notice),
        ("agent.min_drain", &agent.min_drain),
        ("agent.stop_grace", &agent.stop_grace),
        ("agent.event_hook_timeout", &agent.event_hook_timeout),
        ("worker.lease", &loaded.config.worker.lease),
        (
            "worker.shutdown_budget",
            &loaded.config.worker.shutdown_budget,
        ),
        (
            "worker.checkpoint_grace",
            &loaded.config.worker.checkpoint_grace,
        ),
    ] {
        if let Some(v) = value {
            let r = duration(
                &sourced(key, v),
                Duration::from_millis(100),
                Duration::from_secs(3600),
                "fuzz",
            );
            check(&loaded, key, v, r.map(drop));
        }
    }
    for (key, value) in [
        ("agent.imds_url", &agent.imds_url),
        ("agent.drain_url", &agent.drain_url),
        ("agent.notify_url", &agent.notify_url),
        ("agent.ready_url", &agent.ready_url),
    ] {
        if let Some(v) = value {
            check(&loaded, key, v, url(&sourced(key, v)).map(drop));
        }
    }
    if let Some(v) = &agent.listen {
        let r = socket_addr(&sourced("agent.listen", v));
        check(&loaded, "agent.listen", v, r.map(drop));
    }
    if let Some(policy) = &agent.policy {
        let entries: Vec<Sourced> = policy
            .iter()
            .map(|(ty, reaction)| {
                sourced(&format!("agent.policy.{ty}"), &format!("{ty}={reaction}"))
            })
            .collect();
        if let Err(err) = reactions(&entries) {
            let text = err.to_string();
            assert!(text.contains("agent.policy."), "{text}");
            assert!(text.contains(FILE), "{text}");
        }
    }
    if let Some(n) = loaded.config.worker.concurrency {
        let v = n.to_string();
        check(
            &loaded,
            "worker.concurrency",
            &v,
            number(&sourced("worker.concurrency", &v), 1, 256, "fuzz").map(drop),
        );
    }
});
