//! The reconcile loop: performs [`PoolMachine`]'s actions on a [`ComputeCloud`] and feeds the
//! results back.
//!
//! Data flow: read the clock, feed one input (a listing, an operation's end, an agent's report,
//! a tick) into [`PoolMachine::handle`], spawn each returned action as a task (the machine bounds
//! how many are in flight), publish the status, then wait for whichever comes first: a task
//! ending, an agent report on the channel, the machine's [`PoolMachine::next_wakeup`], or
//! shutdown. The cloud implementation polls long-running operations and paces itself; the
//! machine decides about every failure.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use spotkit_cloud::{Clock, ComputeCloud, ComputeError};
use spotkit_core::Timestamp;
use spotkit_core::events::EventType;
use spotkit_core::orchestrator::{
    Action, Input, OpFailure, OpId, PoolMachine, PoolStatus, TAG_POOL,
};
use tokio::sync::{mpsc, watch};
use tokio::task::{Id, JoinSet};

/// What agents tell the orchestrator (the notice endpoint parses the HTTP body into this).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentReport {
    /// A Scheduled Event the agent saw (its `--notify-url` POST).
    Notice {
        /// The VM.
        vm_name: String,
        /// The event's type.
        event_type: EventType,
        /// The event's `NotBefore`, if any.
        not_before: Option<Timestamp>,
        /// When the agent saw it.
        observed_at: Timestamp,
    },
    /// The agent's health verdict on its workload.
    Heartbeat {
        /// The VM.
        vm_name: String,
        /// Whether the workload is healthy.
        healthy: bool,
    },
}

impl From<AgentReport> for Input {
    fn from(r: AgentReport) -> Self {
        match r {
            AgentReport::Notice {
                vm_name,
                event_type,
                not_before,
                observed_at,
            } => Input::Notice {
                vm_name,
                event_type,
                not_before,
                observed_at,
            },
            AgentReport::Heartbeat { vm_name, healthy } => Input::Heartbeat { vm_name, healthy },
        }
    }
}

/// Maps the cloud's error onto what the core branches on.
#[must_use]
pub fn op_failure(e: &ComputeError) -> OpFailure {
    match e {
        ComputeError::Capacity { .. } => OpFailure::Capacity,
        ComputeError::QuotaExceeded { message, .. } => {
            let m = message.to_ascii_lowercase();
            // Spot's LowPriorityCores and Total Regional Cores cover every size in the region.
            OpFailure::Quota {
                region_wide: m.contains("lowprioritycores") || m.contains("regional"),
            }
        }
        ComputeError::Throttled { retry_after } => OpFailure::Throttled {
            retry_after: *retry_after,
        },
        ComputeError::NotFound { .. } => OpFailure::NotFound,
        ComputeError::Conflict { .. } => OpFailure::Conflict,
        ComputeError::Invalid { code, message } => OpFailure::Invalid {
            message: format!("{code}: {message}"),
        },
        ComputeError::Unauthorized { message } => OpFailure::Unauthorized {
            message: message.clone(),
        },
        ComputeError::OperationFailed { .. } | ComputeError::Transient { .. } => {
            OpFailure::Transient {
                message: e.to_string(),
            }
        }
    }
}

/// Runs one pool's reconcile loop.
pub struct PoolRunner<C, K> {
    cloud: Arc<C>,
    clock: Arc<K>,
    machine: PoolMachine,
    reports: mpsc::Receiver<AgentReport>,
    status: watch::Sender<PoolStatus>,
}

impl<C: ComputeCloud, K: Clock> PoolRunner<C, K> {
    /// A runner for `machine` on `cloud`; agent reports arrive on `reports`.
    pub fn new(
        cloud: Arc<C>,
        clock: Arc<K>,
        machine: PoolMachine,
        reports: mpsc::Receiver<AgentReport>,
    ) -> Self {
        let (status, _) = watch::channel(machine.status());
        Self {
            cloud,
            clock,
            machine,
            reports,
            status,
        }
    }

    /// The pool's status, updated after every step.
    #[must_use]
    pub fn status(&self) -> watch::Receiver<PoolStatus> {
        self.status.subscribe()
    }

    /// Runs until `shutdown` completes, then lets the operations in flight end (a create that
    /// is cut short is harmless: names are deterministic and ARM's PUT idempotent) and returns
    /// the machine.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> PoolMachine {
        let mut tasks: JoinSet<Input> = JoinSet::new();
        // Which operation each task performs (`None`: a listing), to report a panicked task.
        let mut task_ops: HashMap<Id, Option<OpId>> = HashMap::new();
        let mut reports_open = true;
        let mut next = Some(Input::Tick);
        tokio::pin!(shutdown);
        loop {
            if let Some(input) = next.take() {
                let now = self.clock.now();
                let actions = self.machine.handle(input, now);
                for action in actions {
                    let op = match &action {
                        Action::Create { op, .. }
                        | Action::Start { op, .. }
                        | Action::Delete { op, .. } => Some(*op),
                        Action::Observe => None,
                    };
                    let id = self.spawn(&mut tasks, action);
                    task_ops.insert(id, op);
                }
                self.status.send_replace(self.machine.status());
            }
            let wake = self.machine.next_wakeup();
            let clock = Arc::clone(&self.clock);
            let sleep = async move {
                match wake {
                    Some(t) => clock.sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                Some(done) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    next = Some(match done {
                        Ok((id, input)) => {
                            task_ops.remove(&id);
                            input
                        }
                        Err(e) => {
                            tracing::error!(pool = %self.machine.spec().name, "cloud task failed: {e}");
                            match task_ops.remove(&e.id()).flatten() {
                                Some(op) => Input::OperationDone {
                                    op,
                                    result: Err(OpFailure::Transient {
                                        message: format!("the cloud call panicked: {e}"),
                                    }),
                                },
                                None => Input::ObserveFailed,
                            }
                        }
                    });
                }
                report = self.reports.recv(), if reports_open => {
                    match report {
                        Some(r) => next = Some(r.into()),
                        None => reports_open = false,
                    }
                }
                () = sleep => next = Some(Input::Tick),
            }
        }
        while let Some(done) = tasks.join_next_with_id().await {
            if let Ok((_, input)) = done {
                let now = self.clock.now();
                // Record the outcome; start nothing new.
                let _ = self.machine.handle(input, now);
            }
        }
        self.status.send_replace(self.machine.status());
        self.machine
    }

    fn spawn(&self, tasks: &mut JoinSet<Input>, action: Action) -> Id {
        let cloud = Arc::clone(&self.cloud);
        let pool = self.machine.spec().name.clone();
        match action {
            Action::Observe => {
                let handle = tasks.spawn(async move {
                    match cloud.list_vms(Some((TAG_POOL, pool.as_str()))).await {
                        Ok(list) => Input::Observed(list),
                        Err(e) => {
                            tracing::warn!(%pool, "listing the pool's VMs failed: {e}");
                            Input::ObserveFailed
                        }
                    }
                });
                handle.id()
            }
            Action::Create { op, spec } => {
                tracing::info!(%pool, vm = %spec.name, offering = %spec.offering, priority = ?spec.priority, "creating VM");
                let handle = tasks.spawn(async move {
                    let result = cloud.create_vm(&spec).await.map(Some).map_err(|e| {
                        tracing::warn!(%pool, vm = %spec.name, offering = %spec.offering, "create failed: {e}");
                        op_failure(&e)
                    });
                    Input::OperationDone { op, result }
                });
                handle.id()
            }
            Action::Start {
                op,
                resource_group,
                name,
            } => {
                tracing::info!(%pool, vm = %name, "starting VM");
                let handle = tasks.spawn(async move {
                    let result = cloud
                        .start_vm(&resource_group, &name)
                        .await
                        .map(|()| None)
                        .map_err(|e| {
                            tracing::warn!(%pool, vm = %name, "start failed: {e}");
                            op_failure(&e)
                        });
                    Input::OperationDone { op, result }
                });
                handle.id()
            }
            Action::Delete {
                op,
                resource_group,
                name,
            } => {
                tracing::info!(%pool, vm = %name, "deleting VM");
                let handle = tasks.spawn(async move {
                    let result = cloud
                        .delete_vm(&resource_group, &name)
                        .await
                        .map(|()| None)
                        .map_err(|e| {
                            tracing::warn!(%pool, vm = %name, "delete failed: {e}");
                            op_failure(&e)
                        });
                    Input::OperationDone { op, result }
                });
                handle.id()
            }
        }
    }
}
