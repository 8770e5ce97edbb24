//! Hook commands (`sh -c`), ready checks and the environment they see.

use std::time::Duration;

use spotkit_core::Timestamp;
use spotkit_core::events::ScheduledEvent;
use tokio::process::Command;
use tokio::sync::watch;

/// Environment describing an event, for hooks and drain callbacks.
pub(crate) fn event_env(
    vm_name: &str,
    event: Option<&ScheduledEvent>,
    deadline: Option<Timestamp>,
) -> Vec<(String, String)> {
    let mut env = vec![("SPOTKIT_VM_NAME".to_string(), vm_name.to_string())];
    if let Some(e) = event {
        env.push(("SPOTKIT_EVENT_ID".into(), e.id.to_string()));
        env.push(("SPOTKIT_EVENT_TYPE".into(), e.event_type.to_string()));
        env.push(("SPOTKIT_EVENT_STATUS".into(), format!("{:?}", e.status)));
        env.push((
            "SPOTKIT_NOT_BEFORE_UNIX_MS".into(),
            e.not_before
                .map(|t| t.unix_millis().to_string())
                .unwrap_or_default(),
        ));
    }
    if let Some(d) = deadline {
        env.push((
            "SPOTKIT_DEADLINE_UNIX_MS".into(),
            d.unix_millis().to_string(),
        ));
    }
    env
}

/// How a hook ended.
#[derive(Debug)]
pub(crate) enum HookOutcome {
    /// It exited with this code.
    Exited(i32),
    /// It ran past its time and was killed.
    Killed,
    /// It could not be started.
    SpawnFailed(std::io::Error),
}

/// Runs `sh -c script` with `env`, killing it (SIGKILL) after `timeout` or when `kill` turns true.
pub(crate) async fn run_hook(
    script: &str,
    env: &[(String, String)],
    timeout: Duration,
    mut kill: watch::Receiver<bool>,
) -> HookOutcome {
    let mut command = Command::new("sh");
    command.arg("-c").arg(script).kill_on_drop(true);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => return HookOutcome::SpawnFailed(e),
    };
    let killed = async {
        while !*kill.borrow_and_update() {
            if kill.changed().await.is_err() {
                // Sender gone: nobody can ask for a kill any more; wait for the timeout instead.
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        status = child.wait() => match status {
            Ok(s) => HookOutcome::Exited(crate::workload::exit_code(s)),
            Err(e) => HookOutcome::SpawnFailed(e),
        },
        () = tokio::time::sleep(timeout) => {
            let _ = child.kill().await;
            HookOutcome::Killed
        }
        () = killed => {
            let _ = child.kill().await;
            HookOutcome::Killed
        }
    }
}
