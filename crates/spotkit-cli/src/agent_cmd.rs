//! `spotkit agent`: flags, environment and config file resolved into `AgentOptions`, then run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::ArgMatches;
use clap::parser::ValueSource;
use spotkit_agent::AgentOptions;
use spotkit_azure::imds::{ImdsClient, ImdsClientOptions};
use spotkit_cloud::{Clock, SystemClock};
use spotkit_core::agent::AgentSettings;

use crate::Failure;
use crate::config::{self, ConfigError, LoadedFile, Origin, Setting, Sourced};

/// Flags of `spotkit agent`. Each also reads `SPOTKIT_<NAME>` and the `[agent]` table of the
/// config file; flags win over the environment, which wins over the file.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  spotkit agent -- ./worker --queue jobs\n  spotkit agent --on-preempt 'systemctl stop myapp'\n  spotkit agent --imds-url http://127.0.0.1:8080 --vm-name vm1 --listen 127.0.0.1:9464 -- sleep 600"
)]
pub struct AgentArgs {
    /// TOML config file (table [agent]); see docs/agent.md.
    #[arg(long, env = "SPOTKIT_CONFIG")]
    config: Option<PathBuf>,
    /// IMDS base URL [default: http://169.254.169.254].
    #[arg(long, env = "SPOTKIT_IMDS_URL")]
    imds_url: Option<String>,
    /// This VM's name as events list it [default: compute.name from IMDS instance metadata].
    #[arg(long, env = "SPOTKIT_VM_NAME")]
    vm_name: Option<String>,
    /// Time between polls, 250ms..30s [default: 1s].
    #[arg(long, env = "SPOTKIT_POLL_INTERVAL")]
    poll_interval: Option<String>,
    /// Per-request timeout of a poll [default: 2s].
    #[arg(long, env = "SPOTKIT_POLL_TIMEOUT")]
    poll_timeout: Option<String>,
    /// Timeout until the first poll succeeds (IMDS may take 2 minutes to answer the first) [default: 130s].
    #[arg(long, env = "SPOTKIT_FIRST_POLL_TIMEOUT")]
    first_poll_timeout: Option<String>,
    /// Taken off NotBefore to get the drain deadline [default: 5s].
    #[arg(long, env = "SPOTKIT_SAFETY_MARGIN")]
    safety_margin: Option<String>,
    /// Notice assumed when NotBefore is empty or the event already Started [default: 30s].
    #[arg(long, env = "SPOTKIT_DEFAULT_NOTICE")]
    default_notice: Option<String>,
    /// The least time the workload gets between SIGTERM and SIGKILL [default: 1s].
    #[arg(long, env = "SPOTKIT_MIN_DRAIN")]
    min_drain: Option<String>,
    /// Time the workload gets when the agent itself is stopped (SIGTERM/SIGINT) [default: 20s].
    #[arg(long, env = "SPOTKIT_STOP_GRACE")]
    stop_grace: Option<String>,
    /// Approve drained events so Azure proceeds at once [default: true].
    #[arg(long, env = "SPOTKIT_APPROVE_EVENTS")]
    approve_events: Option<bool>,
    /// Shell command run when a drain starts (Preempt/Terminate by default).
    #[arg(long, env = "SPOTKIT_ON_PREEMPT")]
    on_preempt: Option<String>,
    /// Shell command run for events whose reaction is hook (Freeze/Reboot/Redeploy by default).
    #[arg(long, env = "SPOTKIT_ON_EVENT")]
    on_event: Option<String>,
    /// How long an --on-event hook may run [default: 60s].
    #[arg(long, env = "SPOTKIT_EVENT_HOOK_TIMEOUT")]
    event_hook_timeout: Option<String>,
    /// The workload's drain endpoint: POSTed the notice; its answer means drained.
    #[arg(long, env = "SPOTKIT_DRAIN_URL")]
    drain_url: Option<String>,
    /// The orchestrator's notice endpoint, POSTed the moment an event is seen.
    #[arg(long, env = "SPOTKIT_NOTIFY_URL")]
    notify_url: Option<String>,
    /// The orchestrator's heartbeat endpoint, POSTed {"vm_name","healthy","at"} periodically.
    #[arg(long, env = "SPOTKIT_HEARTBEAT_URL")]
    heartbeat_url: Option<String>,
    /// A file holding the orchestrator's endpoint token (or set SPOTKIT_ORCHESTRATOR_TOKEN),
    /// sent as `Authorization: Bearer` with notices and heartbeats.
    #[arg(long, env = "SPOTKIT_ORCHESTRATOR_TOKEN_FILE")]
    orchestrator_token_file: Option<std::path::PathBuf>,
    /// Time between heartbeats; a change of health is sent at once [default: 15s].
    #[arg(long, env = "SPOTKIT_HEARTBEAT_INTERVAL")]
    heartbeat_interval: Option<String>,
    /// Warmup gate: a shell command that exits 0 once the workload is healthy.
    #[arg(long, env = "SPOTKIT_READY_CHECK")]
    ready_check: Option<String>,
    /// Warmup gate: a URL that answers 2xx once the workload is healthy.
    #[arg(long, env = "SPOTKIT_READY_URL")]
    ready_url: Option<String>,
    /// Serve /healthz, /readyz and /metrics here (off unless given), e.g. 127.0.0.1:9464.
    #[arg(long, env = "SPOTKIT_LISTEN")]
    listen: Option<String>,
    /// Reaction per event type, TYPE=drain|hook|ignore; repeatable or comma-separated.
    #[arg(long = "policy", env = "SPOTKIT_POLICY", value_delimiter = ',')]
    policy: Vec<String>,
    /// The workload to supervise; its exit code becomes the agent's.
    #[arg(last = true)]
    command: Vec<String>,
}

macro_rules! setting {
    ($m:expr, $id:literal, $flag:literal, $env:literal) => {
        Setting {
            matches: $m,
            table: "agent",
            id: $id,
            flag: $flag,
            env: $env,
        }
    };
}

/// Fully resolved agent configuration.
pub struct Resolved {
    pub options: AgentOptions,
    /// `log_format` from the file (the global flag/env wins over it).
    pub log_format: Option<String>,
    pub imds_url: String,
    pub vm_name: Option<String>,
}

/// Resolves flags + env (via clap) + file into validated options.
pub fn resolve(args: &AgentArgs, m: &ArgMatches) -> Result<Resolved, ConfigError> {
    let loaded = match &args.config {
        Some(path) => LoadedFile::load(path)?,
        None => LoadedFile::default(),
    };
    let f = &loaded.config.agent;
    let pick = |s: Setting<'_>, cli: &Option<String>, file: &Option<String>| {
        s.pick(cli.as_ref(), file.as_ref(), &loaded)
    };
    let imds_url = match pick(
        setting!(m, "imds_url", "--imds-url", "SPOTKIT_IMDS_URL"),
        &args.imds_url,
        &f.imds_url,
    ) {
        Some(s) => config::url(&s)?,
        None => ImdsClientOptions::default().base_url,
    };
    let vm_name = pick(
        setting!(m, "vm_name", "--vm-name", "SPOTKIT_VM_NAME"),
        &args.vm_name,
        &f.vm_name,
    )
    .map(|s| {
        let v = s.value.trim().to_string();
        if v.is_empty() {
            Err(ConfigError::Invalid {
                origin: s.origin,
                value: s.value,
                problem: "empty VM name".into(),
                fix: "give the VM's name as events list it, or leave it unset to read it from IMDS"
                    .into(),
            })
        } else {
            Ok(v)
        }
    })
    .transpose()?;

    let mut settings = AgentSettings::new(vm_name.clone().unwrap_or_default());
    let ms = Duration::from_millis;
    let s = Duration::from_secs;
    if let Some(v) = pick(
        setting!(
            m,
            "poll_interval",
            "--poll-interval",
            "SPOTKIT_POLL_INTERVAL"
        ),
        &args.poll_interval,
        &f.poll_interval,
    ) {
        settings.poll_interval = config::duration(
            &v,
            ms(250),
            s(30),
            "IMDS allows 5 requests/s, and Preempt gives at best 30s of notice",
        )?;
    }
    let mut options_poll_timeout = s(2);
    if let Some(v) = pick(
        setting!(m, "poll_timeout", "--poll-timeout", "SPOTKIT_POLL_TIMEOUT"),
        &args.poll_timeout,
        &f.poll_timeout,
    ) {
        options_poll_timeout =
            config::duration(&v, ms(100), s(30), "a hung poll must not hide a Preempt")?;
    }
    let mut first_poll_timeout = s(130);
    if let Some(v) = pick(
        setting!(
            m,
            "first_poll_timeout",
            "--first-poll-timeout",
            "SPOTKIT_FIRST_POLL_TIMEOUT"
        ),
        &args.first_poll_timeout,
        &f.first_poll_timeout,
    ) {
        first_poll_timeout = config::duration(
            &v,
            ms(100),
            s(600),
            "IMDS may take up to 2 minutes to answer the first call",
        )?;
    }
    if let Some(v) = pick(
        setting!(
            m,
            "default_notice",
            "--default-notice",
            "SPOTKIT_DEFAULT_NOTICE"
        ),
        &args.default_notice,
        &f.default_notice,
    ) {
        settings.default_notice =
            config::duration(&v, s(1), s(3600), "the notice assumed for Started events")?;
    }
    if let Some(v) = pick(
        setting!(
            m,
            "safety_margin",
            "--safety-margin",
            "SPOTKIT_SAFETY_MARGIN"
        ),
        &args.safety_margin,
        &f.safety_margin,
    ) {
        let margin = config::duration(
            &v,
            Duration::ZERO,
            s(3600),
            "time kept for the kill, the approval and the flush",
        )?;
        if margin >= settings.default_notice {
            return Err(ConfigError::Invalid {
                origin: v.origin,
                value: v.value,
                problem: format!(
                    "not below the default notice of {}",
                    humantime::format_duration(settings.default_notice)
                ),
                fix: "use a margin smaller than the notice (5s suits Azure's 30s Preempt notice)"
                    .into(),
            });
        }
        settings.safety_margin = margin;
    }
    if let Some(v) = pick(
        setting!(m, "min_drain", "--min-drain", "SPOTKIT_MIN_DRAIN"),
        &args.min_drain,
        &f.min_drain,
    ) {
        settings.min_drain = config::duration(
            &v,
            Duration::ZERO,
            s(30),
            "SIGKILL follows SIGTERM after at least this",
        )?;
    }
    if let Some(v) = pick(
        setting!(m, "stop_grace", "--stop-grace", "SPOTKIT_STOP_GRACE"),
        &args.stop_grace,
        &f.stop_grace,
    ) {
        settings.stop_grace = config::duration(
            &v,
            Duration::ZERO,
            s(3600),
            "the workload's time when the agent is stopped",
        )?;
    }
    let mut heartbeat_interval = s(15);
    if let Some(v) = pick(
        setting!(
            m,
            "heartbeat_interval",
            "--heartbeat-interval",
            "SPOTKIT_HEARTBEAT_INTERVAL"
        ),
        &args.heartbeat_interval,
        &f.heartbeat_interval,
    ) {
        heartbeat_interval = config::duration(
            &v,
            s(1),
            s(3600),
            "the orchestrator judges health from these reports",
        )?;
    }
    let mut event_hook_timeout = s(60);
    if let Some(v) = pick(
        setting!(
            m,
            "event_hook_timeout",
            "--event-hook-timeout",
            "SPOTKIT_EVENT_HOOK_TIMEOUT"
        ),
        &args.event_hook_timeout,
        &f.event_hook_timeout,
    ) {
        event_hook_timeout = config::duration(&v, ms(100), s(3600), "bounds an --on-event hook")?;
    }
    if let Some(approve) = args.approve_events.or(f.approve_events) {
        settings.approve_events = approve;
    }
    let policy: Vec<Sourced> = if args.policy.is_empty() {
        f.policy
            .iter()
            .flatten()
            .map(|(k, v)| Sourced {
                value: format!("{k}={v}"),
                origin: loaded.origin(&format!("agent.policy.{k}")),
            })
            .collect()
    } else {
        let origin = match m.value_source("policy") {
            Some(ValueSource::EnvVariable) => Origin::Env("SPOTKIT_POLICY"),
            _ => Origin::Flag("--policy"),
        };
        args.policy
            .iter()
            .map(|v| Sourced {
                value: v.clone(),
                origin: origin.clone(),
            })
            .collect()
    };
    settings.reactions = config::reactions(&policy)?;

    let url_setting = |s: Option<Sourced>| s.map(|s| config::url(&s)).transpose();
    let drain_url = url_setting(pick(
        setting!(m, "drain_url", "--drain-url", "SPOTKIT_DRAIN_URL"),
        &args.drain_url,
        &f.drain_url,
    ))?;
    let notify_url = url_setting(pick(
        setting!(m, "notify_url", "--notify-url", "SPOTKIT_NOTIFY_URL"),
        &args.notify_url,
        &f.notify_url,
    ))?;
    let heartbeat_url = url_setting(pick(
        setting!(
            m,
            "heartbeat_url",
            "--heartbeat-url",
            "SPOTKIT_HEARTBEAT_URL"
        ),
        &args.heartbeat_url,
        &f.heartbeat_url,
    ))?;
    if heartbeat_url.is_some() {
        settings.heartbeat_interval = Some(heartbeat_interval);
    }
    let ready_url_src = pick(
        setting!(m, "ready_url", "--ready-url", "SPOTKIT_READY_URL"),
        &args.ready_url,
        &f.ready_url,
    );
    let ready_check_src = pick(
        setting!(m, "ready_check", "--ready-check", "SPOTKIT_READY_CHECK"),
        &args.ready_check,
        &f.ready_check,
    );
    if let (Some(a), Some(b)) = (&ready_check_src, &ready_url_src) {
        return Err(ConfigError::Conflict {
            first: a.origin.clone(),
            second: b.origin.clone(),
            fix: "choose one warmup gate: a command or a URL".into(),
        });
    }
    let ready_url = url_setting(ready_url_src)?;
    let ready_check = ready_check_src.map(|s| s.value);
    settings.ready_check = ready_check.is_some() || ready_url.is_some();
    let listen = pick(
        setting!(m, "listen", "--listen", "SPOTKIT_LISTEN"),
        &args.listen,
        &f.listen,
    )
    .map(|s| config::socket_addr(&s))
    .transpose()?;
    let on_preempt = pick(
        setting!(m, "on_preempt", "--on-preempt", "SPOTKIT_ON_PREEMPT"),
        &args.on_preempt,
        &f.on_preempt,
    )
    .map(|s| s.value);
    let on_event = pick(
        setting!(m, "on_event", "--on-event", "SPOTKIT_ON_EVENT"),
        &args.on_event,
        &f.on_event,
    )
    .map(|s| s.value);

    let mut options = AgentOptions::new(settings);
    options.command = (!args.command.is_empty()).then(|| args.command.clone());
    options.on_drain_hook = on_preempt;
    options.on_event_hook = on_event;
    options.event_hook_timeout = event_hook_timeout;
    options.drain_url = drain_url;
    options.notify_url = notify_url;
    options.heartbeat_url = heartbeat_url;
    options.ready_check = ready_check;
    options.ready_url = ready_url;
    options.listen = listen;
    options.poll_timeout = options_poll_timeout;
    options.first_poll_timeout = first_poll_timeout;
    options.seed = u64::from(std::process::id());
    Ok(Resolved {
        log_format: f.log_format.clone(),
        options,
        imds_url,
        vm_name,
    })
}

pub fn main(
    args: AgentArgs,
    matches: &ArgMatches,
    log_format: Option<&str>,
) -> Result<u8, Failure> {
    let mut resolved = resolve(&args, matches).map_err(Failure::usage)?;
    resolved.options.orchestrator_token =
        crate::orchestrate_cmd::orchestrator_token(args.orchestrator_token_file.as_deref())
            .map_err(Failure::usage)?
            .and_then(|t| spotkit_agent::OrchestratorToken::new(&t));
    crate::logging::init(log_format.or(resolved.log_format.as_deref()));
    if let Some(addr) = resolved.options.listen
        && !addr.ip().is_loopback()
    {
        tracing::warn!(%addr, "health endpoint listens beyond loopback, as asked");
    }
    // One thread is plenty for a poll a second, and keeps the agent's footprint small.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::runtime)?;
    runtime.block_on(run(resolved))
}

async fn run(resolved: Resolved) -> Result<u8, Failure> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let client = ImdsClient::new(
        &ImdsClientOptions {
            base_url: resolved.imds_url.clone(),
            ..ImdsClientOptions::default()
        },
        clock.clone(),
    )
    .map_err(Failure::runtime)?;
    let mut options = resolved.options;
    if resolved.vm_name.is_none() {
        options.settings.vm_name =
            discover_vm_name(&client, clock.as_ref(), options.first_poll_timeout).await?;
    }
    let outcome = spotkit_agent::run(options, Arc::new(client), clock)
        .await
        .map_err(Failure::runtime)?;
    Ok(u8::try_from(outcome.exit_code.clamp(0, 255)).unwrap_or(1))
}

/// Reads `compute.name`, retrying for as long as IMDS may take to answer after boot.
async fn discover_vm_name(
    client: &ImdsClient,
    clock: &dyn Clock,
    patience: Duration,
) -> Result<String, Failure> {
    let started = clock.now();
    let mut delay = Duration::from_millis(500);
    loop {
        match client.vm_name(Duration::from_secs(5)).await {
            Ok(name) => {
                tracing::info!(vm = %name, "VM name from instance metadata");
                return Ok(name);
            }
            Err(e) if clock.now().since(started) < patience => {
                tracing::warn!("cannot read the VM name from IMDS yet ({e}); retrying");
                clock.sleep_until(clock.now().plus(delay)).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                return Err(Failure::runtime(anyhow::anyhow!(
                    "cannot learn this VM's name from instance metadata: {e}. Pass --vm-name (or SPOTKIT_VM_NAME) to skip the lookup"
                )));
            }
        }
    }
}
