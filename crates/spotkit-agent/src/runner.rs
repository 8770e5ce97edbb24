//! The agent loop: observe, ask the core, act, sleep until the next wakeup.

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::Signal;
use spotkit_cloud::{Clock, EventSource, EventSourceError};
use spotkit_core::Timestamp;
use spotkit_core::agent::{
    Action, AgentMachine, AgentSettings, DrainReason, ExitReason, IgnoreReason, Input, PollHealth,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};

use crate::hooks::{HookOutcome, event_env, run_hook};
use crate::http::Status;
use crate::metrics::{KindLabel, TypeLabel};
use crate::notify::{HeartbeatBody, NoticeBody, OrchestratorToken, post_notice, rfc3339};
use crate::workload::{Workload, exit_code};

/// Everything `spotkit agent` was asked to do, validated.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// The decision core's settings (poll interval, reactions, margins, this VM's name).
    pub settings: AgentSettings,
    /// The workload to supervise (`-- COMMAND ARGS...`); `None` runs hooks only.
    pub command: Option<Vec<String>>,
    /// Shell command run when a drain starts for an event (`--on-preempt`).
    pub on_drain_hook: Option<String>,
    /// Shell command run for events whose reaction is `hook` (`--on-event`).
    pub on_event_hook: Option<String>,
    /// How long an `--on-event` hook may run.
    pub event_hook_timeout: Duration,
    /// The workload's drain endpoint: POSTed the notice; its answer means "drained" (`--drain-url`).
    pub drain_url: Option<String>,
    /// The orchestrator's notice endpoint (`--notify-url`).
    pub notify_url: Option<String>,
    /// The orchestrator's heartbeat endpoint (`--heartbeat-url`); the interval is
    /// `settings.heartbeat_interval`.
    pub heartbeat_url: Option<String>,
    /// Sent with notices and heartbeats to the orchestrator (`--orchestrator-token-file`).
    pub orchestrator_token: Option<OrchestratorToken>,
    /// Warmup gate command (`--ready-check`): exit 0 means ready.
    pub ready_check: Option<String>,
    /// Warmup gate URL (`--ready-url`): a 2xx answer means ready.
    pub ready_url: Option<String>,
    /// Where to serve `/healthz`, `/readyz`, `/metrics` (`--listen`).
    pub listen: Option<SocketAddr>,
    /// Per-request timeout for polls.
    pub poll_timeout: Duration,
    /// Timeout of polls until the first success (IMDS may take up to 2 minutes to answer the first).
    pub first_poll_timeout: Duration,
    /// Seed for backoff jitter.
    pub seed: u64,
    /// Whether the agent reacts to SIGTERM/SIGINT (off only in embedded tests).
    pub handle_signals: bool,
}

impl AgentOptions {
    /// Defaults around `settings`.
    #[must_use]
    pub fn new(settings: AgentSettings) -> Self {
        Self {
            settings,
            command: None,
            on_drain_hook: None,
            on_event_hook: None,
            event_hook_timeout: Duration::from_secs(60),
            drain_url: None,
            notify_url: None,
            heartbeat_url: None,
            orchestrator_token: None,
            ready_check: None,
            ready_url: None,
            listen: None,
            poll_timeout: Duration::from_secs(2),
            first_poll_timeout: Duration::from_secs(130),
            seed: 0,
            handle_signals: true,
        }
    }
}

/// How the agent finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentOutcome {
    /// Why it stopped.
    pub reason: ExitReason,
    /// The process exit code: the workload's, or 0 without a workload.
    pub exit_code: i32,
}

/// Why the agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The workload command could not be started.
    #[error("cannot start the workload {command:?}: {source}; check the command after `--`")]
    Spawn {
        /// The command.
        command: Vec<String>,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The health listener could not be bound.
    #[error("cannot listen on {addr}: {source}; pick a free port or drop --listen")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// An HTTP client could not be built.
    #[error("cannot build an HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

enum Event {
    Machine(Input),
    Polled(Result<spotkit_core::events::EventsDocument, EventSourceError>),
    Approved(Result<(), EventSourceError>),
    ChildExited(std::io::Result<ExitStatus>),
    DrainPartDone(&'static str),
}

struct Drain {
    waiting_for_child: bool,
    other_parts: usize,
    kill: watch::Sender<bool>,
}

/// Runs the agent until the machine says exit.
///
/// # Errors
/// Only for failures to start (workload spawn, listener bind, signal handlers); everything at run
/// time (IMDS faults, hook failures) is retried or logged, never fatal.
pub async fn run<E: EventSource>(
    options: AgentOptions,
    source: Arc<E>,
    clock: Arc<dyn Clock>,
) -> Result<AgentOutcome, AgentError> {
    let status = Arc::new(Status::default());
    if let Some(addr) = options.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| AgentError::Listen { addr, source })?;
        let router = crate::http::router(status.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!("health endpoint stopped: {e}");
            }
        });
    }
    let http = reqwest::Client::builder()
        .build()
        .map_err(AgentError::Http)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();

    let vm_name = options.settings.vm_name.clone();
    let mut workload = None;
    if let Some(argv) = &options.command {
        let env = event_env(&vm_name, None, None);
        let (w, mut child) = Workload::spawn(argv, &env).map_err(|source| AgentError::Spawn {
            command: argv.clone(),
            source,
        })?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let result = child.wait().await;
            let _ = tx.send(Event::ChildExited(result));
        });
        let shown = format!("{argv:?}");
        let shown: String = if shown.chars().count() > 160 {
            shown.chars().take(160).chain("...".chars()).collect()
        } else {
            shown
        };
        tracing::info!(command = %shown, "workload started");
        workload = Some(w);
    }

    let (mut sigterm, mut sigint) = if options.handle_signals {
        (
            Some(signal(SignalKind::terminate()).map_err(AgentError::Signals)?),
            Some(signal(SignalKind::interrupt()).map_err(AgentError::Signals)?),
        )
    } else {
        (None, None)
    };

    let mut machine = AgentMachine::new(options.settings.clone(), clock.now(), options.seed);
    let mut last_poll_error: Option<String> = None;
    let mut drain: Option<Drain> = None;
    let mut child_status: Option<ExitStatus> = None;
    let mut pending = vec![Input::Tick];
    tracing::info!(
        vm = %vm_name,
        poll_interval = ?options.settings.poll_interval,
        "agent watching scheduled events"
    );

    loop {
        for input in pending.drain(..) {
            let now = clock.now();
            for action in machine.handle(input, now) {
                if let Some(reason) = perform(
                    action,
                    now,
                    &options,
                    &source,
                    &http,
                    &tx,
                    &status,
                    workload.as_mut(),
                    &mut drain,
                    last_poll_error.as_deref(),
                ) {
                    status.ready.store(false, Ordering::Relaxed);
                    let exit_code = child_status.map_or(0, exit_code);
                    tracing::info!(?reason, exit_code, "agent exiting");
                    return Ok(AgentOutcome { reason, exit_code });
                }
            }
        }
        let ready = machine.is_ready();
        status.ready.store(ready, Ordering::Relaxed);
        status
            .draining
            .store(machine.is_shutting_down(), Ordering::Relaxed);
        status.metrics.ready.set(i64::from(ready));

        let wake = machine.next_wakeup();
        let sleep = async {
            match wake {
                Some(t) => clock.sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        let next = tokio::select! {
            Some(event) = rx.recv() => Some(event),
            () = sleep => None,
            Some(()) = recv_signal(&mut sigterm) => Some(Event::Machine(Input::StopRequested)),
            Some(()) = recv_signal(&mut sigint) => Some(Event::Machine(Input::StopRequested)),
        };
        let Some(event) = next else {
            pending.push(Input::Tick);
            continue;
        };
        match event {
            Event::Machine(input) => {
                if input == Input::StopRequested {
                    tracing::info!("stop requested (signal); draining the workload");
                }
                pending.push(input);
            }
            Event::Polled(Ok(doc)) => {
                status.metrics.polls.inc();
                status
                    .metrics
                    .incarnation
                    .set(i64::try_from(doc.incarnation).unwrap_or(i64::MAX));
                last_poll_error = None;
                pending.push(Input::EventsPolled(doc));
            }
            Event::Polled(Err(e)) => {
                let kind = e.kind();
                status
                    .metrics
                    .poll_errors
                    .get_or_create(&KindLabel {
                        kind: format!("{kind:?}"),
                    })
                    .inc();
                last_poll_error = Some(e.to_string());
                pending.push(Input::PollFailed(kind));
            }
            Event::Approved(result) => {
                let label = if result.is_ok() { "ok" } else { "failed" };
                status
                    .metrics
                    .approvals
                    .get_or_create(&KindLabel { kind: label.into() })
                    .inc();
                if let Err(e) = &result {
                    tracing::warn!("approval failed: {e}");
                }
                pending.push(Input::ApprovalSent(result.map_err(|e| e.kind())));
            }
            Event::ChildExited(result) => {
                if let Some(w) = workload.as_mut() {
                    w.mark_exited();
                }
                match result {
                    Ok(s) => {
                        tracing::info!(exit_code = exit_code(s), "workload exited");
                        child_status = Some(s);
                    }
                    Err(e) => tracing::error!("cannot wait for the workload: {e}"),
                }
                match drain.as_mut() {
                    Some(d) => {
                        d.waiting_for_child = false;
                        if drain_complete(d) {
                            pending.push(Input::WorkloadDown);
                        }
                    }
                    None => pending.push(Input::WorkloadDown),
                }
            }
            Event::DrainPartDone(part) => {
                if let Some(d) = drain.as_mut()
                    && d.other_parts > 0
                {
                    tracing::debug!(part, "drain step finished");
                    d.other_parts -= 1;
                    if drain_complete(d) {
                        pending.push(Input::WorkloadDown);
                    }
                }
            }
        }
    }
}

fn drain_complete(d: &Drain) -> bool {
    !d.waiting_for_child && d.other_parts == 0
}

async fn recv_signal(s: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match s {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

#[allow(clippy::too_many_arguments)] // the runner's parts, passed explicitly rather than bundled
fn perform<E: EventSource>(
    action: Action,
    now: Timestamp,
    options: &AgentOptions,
    source: &Arc<E>,
    http: &reqwest::Client,
    tx: &mpsc::UnboundedSender<Event>,
    status: &Arc<Status>,
    workload: Option<&mut Workload>,
    drain: &mut Option<Drain>,
    last_poll_error: Option<&str>,
) -> Option<ExitReason> {
    let vm_name = &options.settings.vm_name;
    match action {
        Action::Poll { first } => {
            let timeout = if first {
                options.first_poll_timeout
            } else {
                options.poll_timeout
            };
            let source = source.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let result = source.poll(timeout).await;
                let _ = tx.send(Event::Polled(result));
            });
        }
        Action::RunReadyCheck => spawn_ready_check(options, http, tx),
        Action::BecameReady => tracing::info!("warmup gate passed; agent ready"),
        Action::HealthChanged(PollHealth::Healthy) => {
            tracing::info!("scheduled events endpoint answering again");
        }
        Action::HealthChanged(PollHealth::Failing { failure, .. }) => {
            tracing::warn!(
                ?failure,
                "scheduled events poll failing ({}); retrying with backoff, workload keeps running",
                last_poll_error.unwrap_or("no detail")
            );
        }
        Action::IncarnationChanged { from, to } => {
            tracing::debug!(?from, to, "scheduled events document changed");
        }
        Action::EventSeen(e) => {
            status
                .metrics
                .events_seen
                .get_or_create(&TypeLabel {
                    r#type: e.event_type.to_string(),
                })
                .inc();
            tracing::info!(
                event_id = %e.id,
                event_type = %e.event_type,
                status = ?e.status,
                not_before_unix_ms = e.not_before.map(|t| t.unix_millis()),
                "scheduled event for this VM"
            );
        }
        Action::EventIgnored { event, reason } => {
            let why = match reason {
                IgnoreReason::OtherVm => "it names other VMs",
                IgnoreReason::Policy => "the policy for its type is ignore",
            };
            tracing::info!(
                event_id = %event.id,
                event_type = %event.event_type,
                resources = ?event.resources,
                "ignoring scheduled event: {why}"
            );
        }
        Action::Notify(notice) => {
            if let Some(url) = options.notify_url.clone() {
                let http = http.clone();
                let body = NoticeBody::from(&notice);
                let token = options.orchestrator_token.clone();
                tokio::spawn(async move {
                    if post_notice(&http, &url, &body, token.as_ref(), Duration::from_secs(5)).await
                    {
                        tracing::info!(
                            url = crate::notify::loggable_url(&url),
                            event_id = body.event_id,
                            "orchestrator notified"
                        );
                    }
                });
            }
        }
        Action::Heartbeat { healthy } => {
            if let Some(url) = options.heartbeat_url.clone() {
                let http = http.clone();
                let body = HeartbeatBody {
                    vm_name: vm_name.clone(),
                    healthy,
                    at: rfc3339(now),
                };
                let token = options.orchestrator_token.clone();
                tokio::spawn(async move {
                    // Fire and forget: the next heartbeat is the retry.
                    let mut request = http.post(&url).json(&body).timeout(Duration::from_secs(5));
                    if let Some(t) = &token {
                        request = t.authorize(request);
                    }
                    match request.send().await {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => {
                            tracing::warn!(url, status = r.status().as_u16(), "heartbeat refused")
                        }
                        Err(e) => tracing::warn!(url, "heartbeat failed: {e}"),
                    }
                });
            }
        }
        Action::RunHook(event) => {
            if let Some(script) = options.on_event_hook.clone() {
                let env = event_env(vm_name, Some(&event), None);
                let timeout = options.event_hook_timeout;
                tokio::spawn(async move {
                    let (_keep, kill) = watch::channel(false);
                    let outcome = run_hook(&script, &env, timeout, kill).await;
                    tracing::info!(event_id = %event.id, ?outcome, "event hook finished");
                });
            }
        }
        Action::StartDrain { reason, deadline } => {
            let (kill_tx, _) = watch::channel(false);
            let mut d = Drain {
                waiting_for_child: workload.as_ref().is_some_and(|w| w.is_alive()),
                other_parts: 0,
                kill: kill_tx,
            };
            let event = match &reason {
                DrainReason::Event(e) => Some(e.clone()),
                DrainReason::AgentStop => None,
            };
            tracing::warn!(
                reason = event.as_ref().map_or("agent stop".to_string(), |e| format!("{} {}", e.event_type, e.id)),
                deadline_in = ?deadline.since(now),
                "draining the workload"
            );
            if let Some(w) = workload {
                w.signal(Signal::SIGTERM);
            }
            if let (Some(script), Some(e)) = (options.on_drain_hook.clone(), event.as_ref()) {
                d.other_parts += 1;
                let env = event_env(vm_name, Some(e), Some(deadline));
                let kill = d.kill.subscribe();
                let tx = tx.clone();
                tokio::spawn(async move {
                    // The deadline bounds it through the kill switch; the long timeout is a backstop.
                    let outcome = run_hook(&script, &env, Duration::from_secs(3600), kill).await;
                    tracing::info!(?outcome, "drain hook finished");
                    if let HookOutcome::SpawnFailed(e) = outcome {
                        tracing::error!("cannot run the drain hook: {e}");
                    }
                    let _ = tx.send(Event::DrainPartDone("drain hook"));
                });
            }
            if let (Some(url), Some(e)) = (options.drain_url.clone(), event.as_ref()) {
                d.other_parts += 1;
                let http = http.clone();
                let tx = tx.clone();
                let mut kill = d.kill.subscribe();
                let body = NoticeBody::from(&spotkit_core::agent::Notice {
                    vm_name: vm_name.clone(),
                    event_id: e.id.clone(),
                    event_type: e.event_type,
                    not_before: e.not_before,
                    observed_at: now,
                    drain_deadline: Some(deadline),
                });
                tokio::spawn(async move {
                    tokio::select! {
                        ok = post_notice(&http, &url, &body, None, Duration::from_secs(3600)) => {
                            tracing::info!(url = crate::notify::loggable_url(&url), delivered = ok, "drain callback answered");
                        }
                        _ = kill.wait_for(|k| *k) => {}
                    }
                    let _ = tx.send(Event::DrainPartDone("drain callback"));
                });
            }
            if drain_complete(&d) {
                let _ = tx.send(Event::Machine(Input::WorkloadDown));
            }
            status.draining.store(true, Ordering::Relaxed);
            *drain = Some(d);
        }
        Action::DeadlineMoved(deadline) => {
            tracing::warn!(
                deadline_unix_ms = deadline.unix_millis(),
                "drain deadline moved earlier"
            );
        }
        Action::KillWorkload => {
            tracing::warn!("workload still running at the drain deadline; killing it");
            status.metrics.workload_killed.inc();
            if let Some(w) = workload {
                w.signal(Signal::SIGKILL);
            }
            if let Some(d) = drain.as_mut() {
                let _ = d.kill.send(true);
            }
        }
        Action::Approve(ids) => {
            tracing::info!(events = ?ids, "workload down; approving the events");
            let source = source.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let result = source.approve(&ids).await;
                let _ = tx.send(Event::Approved(result));
            });
        }
        Action::DrainFinished { elapsed, killed } => {
            status
                .metrics
                .shutdown_seconds
                .observe(elapsed.as_secs_f64());
            tracing::info!(?elapsed, killed, "workload down");
        }
        Action::Exit(reason) => return Some(reason),
    }
    None
}

fn spawn_ready_check(
    options: &AgentOptions,
    http: &reqwest::Client,
    tx: &mpsc::UnboundedSender<Event>,
) {
    let tx = tx.clone();
    if let Some(script) = options.ready_check.clone() {
        tokio::spawn(async move {
            let (_keep, kill) = watch::channel(false);
            let passed = matches!(
                run_hook(&script, &[], Duration::from_secs(10), kill).await,
                HookOutcome::Exited(0)
            );
            let _ = tx.send(Event::Machine(Input::ReadyCheck { passed }));
        });
    } else if let Some(url) = options.ready_url.clone() {
        let http = http.clone();
        tokio::spawn(async move {
            let passed = http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            let _ = tx.send(Event::Machine(Input::ReadyCheck { passed }));
        });
    } else {
        let _ = tx.send(Event::Machine(Input::ReadyCheck { passed: true }));
    }
}
