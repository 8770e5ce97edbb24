use super::*;

fn t(ms: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + ms)
}

fn settings() -> WorkerSettings {
    WorkerSettings {
        concurrency: 2,
        prefetch: 1,
        lease: Duration::from_secs(30),
        renew_margin: Duration::from_secs(10),
        max_dequeue: 3,
        ..WorkerSettings::default()
    }
}

fn held(id: &str, count: u32, visible_at: Timestamp) -> Held {
    Held {
        id: id.to_string(),
        dequeue_count: count,
        visible_at,
    }
}

fn ready_machine() -> WorkerMachine {
    let mut m = WorkerMachine::new(settings(), t(0), 5);
    assert!(
        m.handle(WorkerInput::Tick, t(0)).is_empty(),
        "nothing before warmup"
    );
    let a = m.handle(WorkerInput::Ready, t(0));
    assert_eq!(
        a,
        vec![WorkerAction::Receive {
            max: 3,
            visibility: Duration::from_secs(30)
        }]
    );
    m
}

fn count(actions: &[WorkerAction], pred: impl Fn(&WorkerAction) -> bool) -> usize {
    actions.iter().filter(|a| pred(a)).count()
}

#[test]
fn holds_at_most_concurrency_plus_prefetch_and_runs_at_most_concurrency() {
    let mut m = ready_machine();
    let a = m.handle(
        WorkerInput::Received(vec![
            held("a", 1, t(30_000)),
            held("b", 1, t(30_000)),
            held("c", 1, t(30_000)),
        ]),
        t(10),
    );
    assert_eq!(count(&a, |a| matches!(a, WorkerAction::Start { .. })), 2);
    assert_eq!(
        count(&a, |a| matches!(a, WorkerAction::Receive { .. })),
        0,
        "full"
    );
    assert_eq!(m.held(), 3);
    let a = m.handle(
        WorkerInput::Finished {
            id: "a".into(),
            outcome: Outcome::Done,
        },
        t(20),
    );
    assert_eq!(
        a,
        vec![
            WorkerAction::Complete { id: "a".into() },
            WorkerAction::Start { id: "c".into() }
        ],
        "the freed handler slot takes the prefetched message at once"
    );
    let a = m.handle(WorkerInput::Settled { id: "a".into() }, t(30));
    assert_eq!(
        a,
        vec![WorkerAction::Receive {
            max: 1,
            visibility: Duration::from_secs(30)
        }],
        "room for one more"
    );
}

#[test]
fn an_empty_queue_backs_off_then_recovers_at_once_on_messages() {
    let mut m = ready_machine();
    let mut now = t(0);
    let mut gaps = Vec::new();
    for _ in 0..8 {
        let _ = m.handle(WorkerInput::Received(vec![]), now);
        let next = m.next_wakeup().unwrap();
        gaps.push(next.since(now));
        now = next;
        let a = m.handle(WorkerInput::Tick, now);
        assert!(a.iter().any(|a| matches!(a, WorkerAction::Receive { .. })));
    }
    assert!(gaps[0] <= Duration::from_millis(100));
    assert!(
        gaps.iter().all(|g| *g <= Duration::from_secs(2)),
        "capped: {gaps:?}"
    );
    assert!(gaps[7] >= Duration::from_secs(1), "backed off: {gaps:?}");
    let a = m.handle(
        WorkerInput::Received(vec![held("x", 1, now.plus(Duration::from_secs(30)))]),
        now,
    );
    assert!(a.contains(&WorkerAction::Start { id: "x".into() }));
    assert!(
        a.iter().any(|a| matches!(a, WorkerAction::Receive { .. })),
        "receives again at once"
    );
}

#[test]
fn leases_are_renewed_before_they_lapse_for_running_and_waiting_messages() {
    let mut m = ready_machine();
    let _ = m.handle(
        WorkerInput::Received(vec![
            held("a", 1, t(30_000)),
            held("b", 1, t(30_000)),
            held("c", 1, t(30_000)),
        ]),
        t(0),
    );
    assert_eq!(m.next_wakeup(), Some(t(20_000)));
    let a = m.handle(WorkerInput::Tick, t(20_000));
    assert_eq!(
        count(&a, |a| matches!(a, WorkerAction::Renew { .. })),
        3,
        "{a:?}"
    );
    let a = m.handle(WorkerInput::Tick, t(21_000));
    assert_eq!(
        count(&a, |a| matches!(a, WorkerAction::Renew { .. })),
        0,
        "one renewal in flight each"
    );
    let _ = m.handle(
        WorkerInput::Renewed {
            id: "a".into(),
            visible_at: t(50_000),
        },
        t(20_100),
    );
    let _ = m.handle(
        WorkerInput::RenewFailed {
            id: "b".into(),
            lost: false,
        },
        t(20_100),
    );
    let a = m.handle(WorkerInput::Tick, t(20_600));
    assert_eq!(
        a,
        vec![WorkerAction::Renew {
            id: "b".into(),
            visibility: Duration::from_secs(30)
        }],
        "transient failure retried soon"
    );
    let a = m.handle(
        WorkerInput::RenewFailed {
            id: "c".into(),
            lost: true,
        },
        t(20_700),
    );
    assert_eq!(
        a,
        vec![WorkerAction::Forget { id: "c".into() }],
        "lost lease: forget, never complete"
    );
    let a = m.handle(
        WorkerInput::Finished {
            id: "c".into(),
            outcome: Outcome::Done,
        },
        t(20_800),
    );
    assert!(a.is_empty(), "a forgotten message is not completed: {a:?}");
}

#[test]
fn poison_messages_are_moved_aside_without_running() {
    let mut m = ready_machine();
    let a = m.handle(
        WorkerInput::Received(vec![held("p", 4, t(30_000)), held("ok", 3, t(30_000))]),
        t(0),
    );
    assert!(a.iter().any(|a| matches!(a, WorkerAction::Poison { id, reason } if id == "p" && reason.contains("limit of 3"))));
    assert!(a.contains(&WorkerAction::Start { id: "ok".into() }));
    assert!(!a.contains(&WorkerAction::Start { id: "p".into() }));
}

#[test]
fn failures_are_retried_later_with_growing_delays() {
    let mut m = ready_machine();
    let _ = m.handle(
        WorkerInput::Received(vec![held("a", 1, t(30_000)), held("b", 3, t(30_000))]),
        t(0),
    );
    let a1 = m.handle(
        WorkerInput::Finished {
            id: "a".into(),
            outcome: Outcome::Failed,
        },
        t(1),
    );
    let a3 = m.handle(
        WorkerInput::Finished {
            id: "b".into(),
            outcome: Outcome::RetryLater,
        },
        t(1),
    );
    let delay = |a: &[WorkerAction]| match a.first() {
        Some(WorkerAction::Retry { delay, .. }) => *delay,
        other => panic!("expected a retry, got {other:?}"),
    };
    assert!(delay(&a1) <= Duration::from_secs(1));
    assert!(
        delay(&a3) >= Duration::from_secs(2),
        "third attempt waits longer"
    );
}

#[test]
fn shutdown_releases_prefetched_at_once_interrupts_late_and_kills_at_the_deadline() {
    let mut m = ready_machine();
    let _ = m.handle(
        WorkerInput::Received(vec![
            held("a", 1, t(30_000)),
            held("b", 1, t(30_000)),
            held("c", 1, t(30_000)),
        ]),
        t(0),
    );
    let a = m.handle(
        WorkerInput::Shutdown {
            deadline: t(20_000),
        },
        t(1_000),
    );
    assert_eq!(
        a,
        vec![WorkerAction::Release { id: "c".into() }],
        "unstarted work released at once"
    );
    assert_eq!(
        m.next_wakeup(),
        Some(t(15_000)),
        "interrupt at deadline - grace"
    );
    let a = m.handle(
        WorkerInput::Finished {
            id: "a".into(),
            outcome: Outcome::Done,
        },
        t(2_000),
    );
    assert_eq!(
        a,
        vec![WorkerAction::Complete { id: "a".into() }],
        "running work may still finish"
    );
    let _ = m.handle(WorkerInput::Settled { id: "a".into() }, t(2_100));
    let _ = m.handle(WorkerInput::Settled { id: "c".into() }, t(2_100));
    let a = m.handle(WorkerInput::Tick, t(15_000));
    assert_eq!(a, vec![WorkerAction::Interrupt { id: "b".into() }]);
    let a = m.handle(WorkerInput::Tick, t(20_000));
    assert!(a.contains(&WorkerAction::Kill { id: "b".into() }), "{a:?}");
    let a = m.handle(
        WorkerInput::Finished {
            id: "b".into(),
            outcome: Outcome::Interrupted,
        },
        t(20_010),
    );
    assert_eq!(a, vec![WorkerAction::Release { id: "b".into() }]);
    let a = m.handle(WorkerInput::Settled { id: "b".into() }, t(20_050));
    assert_eq!(a, vec![WorkerAction::Exit]);
    assert_eq!(m.next_wakeup(), None);
}

#[test]
fn nothing_is_received_after_shutdown_and_late_deliveries_go_back() {
    let mut m = ready_machine();
    // The receive issued by Ready is in flight when shutdown comes.
    let a = m.handle(
        WorkerInput::Shutdown {
            deadline: t(10_000),
        },
        t(5),
    );
    assert_eq!(a, vec![WorkerAction::Exit], "nothing held: exit at once");
    let mut m = ready_machine();
    let _ = m.handle(WorkerInput::Received(vec![held("a", 1, t(30_000))]), t(1));
    let _ = m.handle(
        WorkerInput::Shutdown {
            deadline: t(10_000),
        },
        t(5),
    );
    let a = m.handle(
        WorkerInput::Received(vec![held("late", 1, t(30_000))]),
        t(6),
    );
    assert!(a.contains(&WorkerAction::Release { id: "late".into() }));
    assert!(
        !a.iter()
            .any(|a| matches!(a, WorkerAction::Receive { .. } | WorkerAction::Start { .. }))
    );
}

#[test]
fn warmup_gate_blocks_receiving() {
    let mut m = WorkerMachine::new(settings(), t(0), 1);
    for ms in [0, 1000, 60_000] {
        assert!(m.handle(WorkerInput::Tick, t(ms)).is_empty());
    }
    assert_eq!(m.next_wakeup(), None);
}

#[test]
fn a_rejected_message_is_poisoned_at_once() {
    let mut m = ready_machine();
    let _ = m.handle(WorkerInput::Received(vec![held("bad", 1, t(30_000))]), t(0));
    let a = m.handle(
        WorkerInput::Rejected {
            id: "bad".into(),
            reason: "malformed envelope".into(),
        },
        t(1),
    );
    assert_eq!(
        a,
        vec![WorkerAction::Poison {
            id: "bad".into(),
            reason: "malformed envelope".into()
        }]
    );
}

/// After any step, the machine never asks to be woken in the past: that would spin the runner.
#[test]
fn next_wakeup_is_never_in_the_past_after_a_step() {
    let mut m = ready_machine();
    let mut now = t(0);
    let script = vec![
        WorkerInput::Received(vec![
            held("a", 1, t(3_000)),
            held("b", 1, t(3_000)),
            held("c", 1, t(3_000)),
        ]),
        WorkerInput::Shutdown { deadline: t(2_000) },
        WorkerInput::Settled { id: "c".into() },
    ];
    for input in script {
        let _ = m.handle(input, now);
    }
    for _ in 0..200 {
        let Some(wake) = m.next_wakeup() else { break };
        assert!(
            wake > now || !m.handle(WorkerInput::Tick, now).is_empty(),
            "spin at {now:?}: wake {wake:?}"
        );
        now = wake.max(now.plus(Duration::from_millis(1)));
        let actions = m.handle(WorkerInput::Tick, now);
        for a in actions {
            match a {
                WorkerAction::Renew { id, .. } => {
                    let _ = m.handle(
                        WorkerInput::Renewed {
                            id,
                            visible_at: now.plus(Duration::from_secs(30)),
                        },
                        now,
                    );
                }
                WorkerAction::Kill { .. } | WorkerAction::Interrupt { .. } => {}
                _ => {}
            }
        }
        if let Some(w) = m.next_wakeup() {
            assert!(
                w > now,
                "after a tick at {now:?} the next wakeup {w:?} is not in the future"
            );
        }
    }
}

#[test]
fn receives_are_batched_while_prefetched_work_is_waiting() {
    let mut m = WorkerMachine::new(
        WorkerSettings {
            concurrency: 2,
            prefetch: 4,
            ..settings()
        },
        t(0),
        1,
    );
    let _ = m.handle(WorkerInput::Ready, t(0));
    let batch = (0..6)
        .map(|i| held(&format!("m{i}"), 1, t(30_000)))
        .collect();
    let _ = m.handle(WorkerInput::Received(batch), t(1));
    let _ = m.handle(
        WorkerInput::Finished {
            id: "m0".into(),
            outcome: Outcome::Done,
        },
        t(2),
    );
    let a = m.handle(WorkerInput::Settled { id: "m0".into() }, t(3));
    assert!(
        !a.iter().any(|a| matches!(a, WorkerAction::Receive { .. })),
        "one free slot, work waiting: no receive yet"
    );
    let _ = m.handle(
        WorkerInput::Finished {
            id: "m1".into(),
            outcome: Outcome::Done,
        },
        t(4),
    );
    let a = m.handle(WorkerInput::Settled { id: "m1".into() }, t(5));
    assert!(
        !a.iter().any(|a| matches!(a, WorkerAction::Receive { .. })),
        "two free of six: still waiting"
    );
    let _ = m.handle(
        WorkerInput::Finished {
            id: "m2".into(),
            outcome: Outcome::Done,
        },
        t(6),
    );
    let a = m.handle(WorkerInput::Settled { id: "m2".into() }, t(7));
    assert!(
        a.contains(&WorkerAction::Receive {
            max: 3,
            visibility: Duration::from_secs(30)
        }),
        "half the capacity free: one receive for three, {a:?}"
    );
}
