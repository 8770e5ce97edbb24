//! `spotkit orchestrate`, `spotkit status`, `spotkit simulate-eviction`: the pool orchestrator
//! on Azure Resource Manager (or the simulator at `--arm-url`). Reference: docs/orchestrator.md.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use spotkit_azure::arm::{
    ArmClient, ArmClientOptions, AzureCompute, AzureComputeOptions, CredentialChoice,
    DEFAULT_ARM_BASE_URL, EntraCredential, StaticToken, TokenProvider,
};
use spotkit_cloud::{Clock, ComputeCloud, SystemClock};
use spotkit_core::orchestrator::{Action, Input, PoolMachine, TAG_POOL};
use spotkit_orchestrator::history::state_path;
use spotkit_orchestrator::pool::rank_catalog;
use spotkit_orchestrator::{
    AgentReport, EndpointToken, History, PoolRunner, StatusView, load_pool, notice_router,
    op_failure, require_bearer_token,
};
use tokio::sync::{mpsc, watch};

use crate::Failure;

/// How to reach ARM.
#[derive(Debug, clap::Args)]
pub struct ArmArgs {
    /// ARM endpoint; the simulator's URL (`spotkit sim serve`) in tests and demos.
    #[arg(long, env = "SPOTKIT_ARM_URL", default_value = DEFAULT_ARM_BASE_URL)]
    arm_url: String,
    /// Subscription id (default for a loopback --arm-url: all zeros).
    #[arg(long, env = "AZURE_SUBSCRIPTION_ID")]
    subscription: Option<String>,
    /// auto, managed-identity, workload-identity, client-secret, azure-cli, or static-token
    /// (the token in SPOTKIT_ARM_TOKEN, or a placeholder: for the simulator).
    #[arg(long, env = "SPOTKIT_ARM_CREDENTIAL", default_value = "auto")]
    credential: String,
}

fn loopback(url: &str) -> bool {
    reqwest::Url::parse(url).ok().is_some_and(|u| {
        u.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
    })
}

impl ArmArgs {
    fn compute(&self, clock: Arc<dyn Clock>) -> Result<AzureCompute, Failure> {
        let tokens: Arc<dyn TokenProvider> = if self.credential.trim() == "static-token" {
            Arc::new(StaticToken::new(
                std::env::var("SPOTKIT_ARM_TOKEN").unwrap_or_else(|_| "spotkit-simulator".into()),
            ))
        } else {
            let choice = CredentialChoice::parse(&self.credential).map_err(Failure::usage)?;
            Arc::new(EntraCredential::from_environment(choice).map_err(Failure::usage)?)
        };
        let subscription = match (&self.subscription, loopback(&self.arm_url)) {
            (Some(s), _) => s.clone(),
            (None, true) => "00000000-0000-0000-0000-000000000000".to_string(),
            (None, false) => {
                return Err(Failure::usage(anyhow::anyhow!(
                    "no subscription: pass --subscription ID or set AZURE_SUBSCRIPTION_ID"
                )));
            }
        };
        let options = ArmClientOptions {
            clock,
            ..ArmClientOptions::default()
        };
        let client = ArmClient::new(&self.arm_url, tokens, options).map_err(Failure::usage)?;
        Ok(AzureCompute::new(
            Arc::new(client),
            subscription,
            AzureComputeOptions {
                ssh_public_key: std::env::var("SPOTKIT_SSH_PUBLIC_KEY").ok(),
                ..AzureComputeOptions::default()
            },
        ))
    }
}

/// The environment variable that may hold the endpoint token (a file is better: environments
/// leak into child processes and crash reports).
pub(crate) const TOKEN_ENV: &str = "SPOTKIT_ORCHESTRATOR_TOKEN";

/// The orchestrator endpoint's shared token: the contents of `file` when given, else
/// `SPOTKIT_ORCHESTRATOR_TOKEN`, else none. Read here, never from flags or config files, so it
/// never shows in `ps`, shell history or `--help`; it is never logged.
pub(crate) fn orchestrator_token(file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    let value = match file {
        Some(path) => std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read the endpoint token file {}; it should hold the token on one line",
                path.display()
            )
        })?,
        None => match std::env::var(TOKEN_ENV) {
            Ok(v) => v,
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                anyhow::bail!("{TOKEN_ENV} is not valid UTF-8")
            }
        },
    };
    let value = value.trim();
    if value.is_empty() {
        let origin = file.map_or_else(|| TOKEN_ENV.to_string(), |p| p.display().to_string());
        anyhow::bail!("the endpoint token in {origin} is empty");
    }
    Ok(Some(value.to_string()))
}

/// `spotkit orchestrate`.
#[derive(Debug, clap::Args)]
pub struct OrchestrateArgs {
    /// The pool file (docs/pools.md).
    #[arg(long)]
    pool: PathBuf,
    #[command(flatten)]
    arm: ArmArgs,
    /// Where agents post notices and heartbeats, and `spotkit status` reads (loopback by
    /// default; port 0 picks one, printed on stdout).
    #[arg(
        long,
        env = "SPOTKIT_ORCHESTRATOR_LISTEN",
        default_value = "127.0.0.1:7461"
    )]
    listen: SocketAddr,
    /// A file holding the endpoint's shared token (or set SPOTKIT_ORCHESTRATOR_TOKEN): requests
    /// without `Authorization: Bearer TOKEN` get 401. Required to listen beyond loopback.
    #[arg(long, env = "SPOTKIT_ORCHESTRATOR_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// History store (`sqlite:PATH`): latest status and eviction/replacement/operation records.
    #[arg(long, env = "SPOTKIT_ORCHESTRATOR_STATE")]
    state: Option<String>,
    /// Observe once, print the actions the pool would take, and exit without acting.
    #[arg(long)]
    dry_run: bool,
    /// Observe once, perform that plan, wait for its operations, and exit.
    #[arg(long, conflicts_with = "dry_run")]
    once: bool,
    /// Output of --dry-run / --once.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
    /// Seed of the pool's jitter (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
}

fn describe(action: &Action) -> (String, serde_json::Value) {
    match action {
        Action::Create { spec, .. } => (
            format!(
                "create {} {:?} on {} (tags {:?})",
                spec.name, spec.priority, spec.offering, spec.tags
            ),
            serde_json::json!({
                "action": "create", "vm": spec.name, "resource_group": spec.resource_group,
                "size": spec.offering.size, "region": spec.offering.region,
                "priority": format!("{:?}", spec.priority).to_lowercase(), "tags": spec.tags,
            }),
        ),
        Action::Start {
            resource_group,
            name,
            ..
        } => (
            format!("start {resource_group}/{name}"),
            serde_json::json!({"action": "start", "vm": name, "resource_group": resource_group}),
        ),
        Action::Delete {
            resource_group,
            name,
            ..
        } => (
            format!("delete {resource_group}/{name}"),
            serde_json::json!({"action": "delete", "vm": name, "resource_group": resource_group}),
        ),
        Action::Observe => (
            "observe".to_string(),
            serde_json::json!({"action": "observe"}),
        ),
    }
}

fn print_plan(actions: &[Action], view: &StatusView, json: bool) {
    if json {
        let plan: Vec<_> = actions.iter().map(|a| describe(a).1).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"plan": plan, "status": view}))
                .unwrap_or_default()
        );
    } else {
        println!(
            "pool {}: desired {}, live {}, running {}; {} action(s):",
            view.pool,
            view.desired,
            view.live,
            view.running,
            actions.len()
        );
        for a in actions {
            println!("  {}", describe(a).0);
        }
        for c in &view.conditions {
            println!("  condition {}: {}", c.reason, c.message);
        }
    }
}

/// Runs `spotkit orchestrate`.
pub fn main(args: &OrchestrateArgs) -> Result<u8, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::runtime)?;
    runtime.block_on(run(args))
}

async fn run(args: &OrchestrateArgs) -> Result<u8, Failure> {
    let spec = load_pool(&args.pool, rank_catalog(&[])).map_err(Failure::usage)?;
    let token = orchestrator_token(args.token_file.as_deref())
        .map_err(Failure::usage)?
        .map(|t| EndpointToken::new(&t))
        .transpose()
        .map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
    if token.is_none() && !args.listen.ip().is_loopback() && !args.dry_run && !args.once {
        return Err(Failure::usage(anyhow::anyhow!(
            "refusing to listen on {} without an endpoint token: anyone who can reach it could \
             post notices that make the pool replace VMs. Put a random token in a file and pass \
             --token-file FILE (or set {TOKEN_ENV}), and give the agents the same token \
             (--orchestrator-token-file)",
            args.listen
        )));
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let cloud = Arc::new(args.arm.compute(Arc::clone(&clock))?);
    let now = clock.now();
    let seed = args
        .seed
        .unwrap_or_else(|| now.unix_millis().unsigned_abs());
    let mut machine = PoolMachine::new(spec.clone(), now, seed);
    let mut history = match &args.state {
        Some(url) => {
            Some(History::open(&state_path(url).map_err(Failure::usage)?).map_err(Failure::usage)?)
        }
        None => None,
    };

    if args.dry_run || args.once {
        let _ = machine.handle(Input::Tick, clock.now());
        let listing = cloud
            .list_vms(Some((TAG_POOL, spec.name.as_str())))
            .await
            .context("listing the pool's VMs")
            .map_err(Failure::runtime)?;
        let actions = machine.handle(Input::Observed(listing.clone()), clock.now());
        let view = StatusView::build(&spec, &machine.status(), &listing, clock.now());
        print_plan(&actions, &view, args.output == "json");
        if args.dry_run {
            return Ok(0);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for action in actions {
            let cloud = Arc::clone(&cloud);
            tasks.spawn(async move {
                let (op, result) = match action {
                    Action::Create { op, spec } => (op, cloud.create_vm(&spec).await.map(Some)),
                    Action::Start {
                        op,
                        resource_group,
                        name,
                    } => (
                        op,
                        cloud.start_vm(&resource_group, &name).await.map(|()| None),
                    ),
                    Action::Delete {
                        op,
                        resource_group,
                        name,
                    } => (
                        op,
                        cloud.delete_vm(&resource_group, &name).await.map(|()| None),
                    ),
                    Action::Observe => return None,
                };
                if let Err(e) = &result {
                    eprintln!("spotkit: operation {op:?} failed: {e}");
                }
                Some(Input::OperationDone {
                    op,
                    result: result.map_err(|e| op_failure(&e)),
                })
            });
        }
        while let Some(done) = tasks.join_next().await {
            if let Ok(Some(input)) = done {
                let _ = machine.handle(input, clock.now());
            }
        }
        let view = StatusView::build(&spec, &machine.status(), &listing, clock.now());
        if let Some(h) = history.as_mut() {
            h.record(&view).map_err(Failure::runtime)?;
        }
        return Ok(0);
    }

    let (reports_tx, reports_rx) = mpsc::channel::<AgentReport>(1024);
    let runner = PoolRunner::new(Arc::clone(&cloud), Arc::clone(&clock), machine, reports_rx);
    let view = runner.view();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))
        .map_err(Failure::usage)?;
    let address = listener
        .local_addr()
        .context("listener address")
        .map_err(Failure::runtime)?;
    println!("listening on http://{address}");
    tracing::info!(pool = %spec.name, %address, "orchestrator listening for agent notices");
    let mut app = notice_router(reports_tx, view.clone(), Arc::clone(&clock));
    if let Some(token) = token {
        app = require_bearer_token(app, token);
    } else {
        tracing::info!("the endpoint takes requests without a token (loopback only)");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|s| *s).await;
            })
            .await
    });
    let recorder = history
        .take()
        .map(|h| tokio::spawn(record_history(h, view.clone(), stop_rx.clone())));
    let shutdown = async {
        shutdown_signal().await;
        tracing::info!("shutting down: letting operations in flight end");
    };
    let _machine = runner.run(shutdown).await;
    let _ = stop_tx.send(true);
    let _ = server.await;
    if let Some(r) = recorder {
        let _ = r.await;
    }
    Ok(0)
}

/// Writes every status change to the history store, on a blocking thread (SQLite).
async fn record_history(
    history: History,
    mut view: watch::Receiver<StatusView>,
    mut stop: watch::Receiver<bool>,
) {
    let history = Arc::new(std::sync::Mutex::new(history));
    loop {
        let current = view.borrow_and_update().clone();
        let h = Arc::clone(&history);
        let written = tokio::task::spawn_blocking(move || {
            h.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(&current)
        })
        .await;
        if let Ok(Err(e)) = written {
            tracing::warn!("history store: {e}");
        }
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            changed = view.changed() => if changed.is_err() { break },
            _ = stop.changed() => {}
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `spotkit status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// A running orchestrator's endpoint (`--listen` of `spotkit orchestrate`).
    #[arg(
        long,
        conflicts_with = "state",
        default_value = "http://127.0.0.1:7461"
    )]
    url: String,
    /// A file holding the endpoint token (or set SPOTKIT_ORCHESTRATOR_TOKEN), when the
    /// orchestrator requires one.
    #[arg(
        long,
        env = "SPOTKIT_ORCHESTRATOR_TOKEN_FILE",
        conflicts_with = "state"
    )]
    token_file: Option<PathBuf>,
    /// Read the history store instead (`sqlite:PATH`), e.g. when the orchestrator is down.
    #[arg(long, env = "SPOTKIT_ORCHESTRATOR_STATE")]
    state: Option<String>,
    /// Pool, when the store holds several (default: the one updated last).
    #[arg(long)]
    pool: Option<String>,
    /// Output format.
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    output: String,
}

/// Runs `spotkit status`.
pub fn status_main(args: &StatusArgs) -> Result<u8, Failure> {
    let (view, records) = match &args.state {
        Some(url) => {
            let h =
                History::open(&state_path(url).map_err(Failure::usage)?).map_err(Failure::usage)?;
            let view = h
                .latest(args.pool.as_deref())
                .map_err(Failure::runtime)?
                .ok_or_else(|| Failure::runtime(anyhow::anyhow!("{url} holds no pool status yet; is the orchestrator running with --state {url}?")))?;
            let records = h.recent(&view.pool, 20).map_err(Failure::runtime)?;
            (view, records)
        }
        None => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")
                .map_err(Failure::runtime)?;
            let url = format!("{}/status", args.url.trim_end_matches('/'));
            let token = orchestrator_token(args.token_file.as_deref()).map_err(Failure::usage)?;
            let view = runtime
                .block_on(async {
                    let http = reqwest::Client::builder()
                        .timeout(std::time::Duration::from_secs(10))
                        .build()?;
                    let mut request = http.get(&url);
                    if let Some(t) = &token {
                        request = request.bearer_auth(t);
                    }
                    request
                        .send()
                        .await?
                        .error_for_status()?
                        .json::<StatusView>()
                        .await
                })
                .with_context(|| {
                    format!("cannot read {url}; is `spotkit orchestrate` running there?")
                })
                .map_err(Failure::runtime)?;
            (view, Vec::new())
        }
    };
    if args.output == "json" {
        let doc = serde_json::json!({"status": view, "history": records});
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        print!("{}", table(&view, &records));
    }
    Ok(0)
}

fn table(v: &StatusView, records: &[spotkit_orchestrator::history::Record]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "pool {} at {}: desired {} ({} regular, {} spot), live {}, running {}, evicting {} VMs, unplaced {}",
        v.pool,
        v.at,
        v.desired,
        v.desired_regular,
        v.desired_spot,
        v.live,
        v.running,
        v.evicting_vms,
        v.unplaced
    );
    let _ = writeln!(
        s,
        "cost rate {:.4} USD/h ({} regular, {} spot, {} fallback VMs{})",
        v.usd_per_hour,
        v.regular_vms,
        v.spot_vms,
        v.fallback_vms,
        if v.unpriced_vms > 0 {
            format!("; {} running VMs without a known price", v.unpriced_vms)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "\n{:<28} {:<32} {:<8} {:<9} {:<13} {:<11} {:>9}",
        "VM", "OFFERING", "PRIORITY", "ROLE", "POWER", "PROVISION", "USD/H"
    );
    for vm in &v.vms {
        let _ = writeln!(
            s,
            "{:<28} {:<32} {:<8} {:<9} {:<13} {:<11} {:>9}",
            vm.name,
            vm.offering,
            vm.priority,
            vm.role.as_deref().unwrap_or("-"),
            vm.power,
            vm.provisioning,
            vm.usd_per_hour
                .map_or_else(|| "-".to_string(), |p| format!("{p:.4}"))
        );
    }
    if !v.pending.is_empty() {
        let _ = writeln!(s, "\noperations in flight:");
        for p in &v.pending {
            let _ = writeln!(s, "  {} {} since {}", p.class, p.vm, p.since);
        }
    }
    if !v.evictions.is_empty() {
        let _ = writeln!(s, "\nrecent evictions:");
        for e in &v.evictions {
            let _ = writeln!(
                s,
                "  {} on {} at {} via {} -> {}{}",
                e.vm,
                e.offering,
                e.seen_at,
                e.via,
                e.replacement.as_deref().unwrap_or("(no replacement yet)"),
                e.time_to_replace_s
                    .map_or_else(String::new, |t| format!(", running after {t:.1} s"))
            );
        }
    }
    for a in &v.avoiding {
        let _ = writeln!(s, "avoiding {} ({}) until {}", a.what, a.why, a.until);
    }
    for r in &v.restarting {
        let _ = writeln!(
            s,
            "restarting {}: {} attempts, next {}, gives up {}",
            r.vm, r.attempts, r.next_at, r.gives_up_at
        );
    }
    for c in &v.conditions {
        let _ = writeln!(s, "condition {} since {}: {}", c.reason, c.since, c.message);
    }
    if !records.is_empty() {
        let _ = writeln!(s, "\nhistory:");
        for r in records {
            let _ = writeln!(s, "  {} {} {} {}", r.at, r.kind, r.vm, r.detail);
        }
    }
    s
}

/// `spotkit simulate-eviction`.
#[derive(Debug, clap::Args)]
pub struct SimulateEvictionArgs {
    /// The VM: its full ARM id, or its name with --resource-group.
    vm: String,
    /// Resource group, when VM is a name.
    #[arg(long)]
    resource_group: Option<String>,
    #[command(flatten)]
    arm: ArmArgs,
}

/// `(subscription, resource group, name)` of a VM's ARM id.
fn parse_vm_id(id: &str) -> Option<(String, String, String)> {
    let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
    let find = |key: &str| {
        parts
            .iter()
            .position(|p| p.eq_ignore_ascii_case(key))
            .and_then(|i| parts.get(i + 1))
            .map(|s| (*s).to_string())
    };
    let is_vm = parts
        .iter()
        .any(|p| p.eq_ignore_ascii_case("virtualMachines"));
    Some((
        find("subscriptions")?,
        find("resourceGroups")?,
        find("virtualMachines").filter(|_| is_vm)?,
    ))
}

/// Runs `spotkit simulate-eviction`.
pub fn simulate_eviction_main(args: SimulateEvictionArgs) -> Result<u8, Failure> {
    let (subscription, group, name) = match (&args.resource_group, parse_vm_id(&args.vm)) {
        (None, Some((s, g, n))) => (Some(s), g, n),
        (Some(g), None) => (None, g.clone(), args.vm.clone()),
        (Some(_), Some(_)) => {
            return Err(Failure::usage(anyhow::anyhow!(
                "give either a full VM id or a name with --resource-group, not both"
            )));
        }
        (None, None) => {
            return Err(Failure::usage(anyhow::anyhow!(
                "{:?} is not a VM id like /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/NAME; or pass the name with --resource-group RG",
                args.vm
            )));
        }
    };
    let mut arm = args.arm;
    if arm.subscription.is_none() {
        arm.subscription = subscription;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::runtime)?;
    let cloud = arm.compute(Arc::new(SystemClock))?;
    runtime
        .block_on(cloud.simulate_eviction(&group, &name))
        .with_context(|| format!("simulateEviction of {group}/{name}"))
        .map_err(Failure::runtime)?;
    println!("eviction requested for {group}/{name}; the VM sees a Preempt event, then is evicted");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_ids() {
        assert_eq!(
            parse_vm_id(
                "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1"
            ),
            Some(("s1".into(), "rg1".into(), "vm1".into()))
        );
        assert_eq!(parse_vm_id("vm1"), None);
        assert!(loopback("http://127.0.0.1:1234"));
        assert!(!loopback("https://management.azure.com"));
    }
}
