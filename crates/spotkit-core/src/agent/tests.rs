//! Table-style tests of the agent core, in virtual time.

use super::*;

const VM: &str = "vm-a";

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + secs * 1000)
}

fn ms(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(1_700_000_000_000 + millis)
}

fn event(id: &str, ty: EventType, not_before: Option<Timestamp>) -> ScheduledEvent {
    ScheduledEvent {
        id: EventId::new(id),
        event_type: ty,
        status: if not_before.is_some() {
            EventStatus::Scheduled
        } else {
            EventStatus::Started
        },
        resources: vec![VM.to_string()],
        not_before,
        description: String::new(),
        source: "Platform".to_string(),
        duration: None,
    }
}

fn doc(incarnation: u64, events: Vec<ScheduledEvent>) -> Input {
    Input::EventsPolled(EventsDocument {
        incarnation,
        events,
    })
}

fn machine() -> AgentMachine {
    AgentMachine::new(AgentSettings::new(VM), t(0), 1)
}

/// Runs the first tick so the first poll is in flight, as the runner does at start.
fn started() -> AgentMachine {
    let mut m = machine();
    let actions = m.handle(Input::Tick, t(0));
    assert_eq!(actions, vec![Action::Poll { first: true }]);
    m
}

fn has(actions: &[Action], pred: impl Fn(&Action) -> bool) -> bool {
    actions.iter().any(pred)
}

#[test]
fn polls_once_per_interval_and_never_twice_in_flight() {
    let mut m = started();
    assert!(
        m.handle(Input::Tick, t(5)).is_empty(),
        "poll still in flight"
    );
    let a = m.handle(doc(1, vec![]), ms(200));
    assert!(!has(&a, |a| matches!(a, Action::Poll { .. })));
    assert_eq!(m.next_wakeup(), Some(ms(1200)));
    assert!(m.handle(Input::Tick, ms(1100)).is_empty());
    assert_eq!(
        m.handle(Input::Tick, ms(1200)),
        vec![Action::Poll { first: false }]
    );
}

#[test]
fn preempt_with_thirty_seconds_notice_drains_with_the_safety_margin() {
    let mut m = started();
    let a = m.handle(
        doc(2, vec![event("E1", EventType::Preempt, Some(t(30)))]),
        t(0),
    );
    let deadline = t(25);
    assert!(has(
        &a,
        |a| matches!(a, Action::Notify(n) if n.event_id.as_str() == "E1" && n.drain_deadline == Some(deadline))
    ));
    assert!(has(
        &a,
        |a| matches!(a, Action::StartDrain { deadline: d, reason: DrainReason::Event(_) } if *d == deadline)
    ));
    assert!(!m.is_ready());
    assert_eq!(m.next_wakeup(), Some(t(1)), "keeps polling while draining");
    // Workload goes down after 3 s: approve at once, then exit once approval lands.
    let a = m.handle(Input::WorkloadDown, t(3));
    assert!(has(&a, |a| matches!(
        a,
        Action::DrainFinished { killed: false, .. }
    )));
    assert!(has(
        &a,
        |a| matches!(a, Action::Approve(ids) if ids == &vec![EventId::new("E1")])
    ));
    let a = m.handle(Input::ApprovalSent(Ok(())), ms(3050));
    assert_eq!(
        a,
        vec![Action::Exit(ExitReason::Drained {
            events: vec![EventId::new("E1")],
            approved: true
        })]
    );
    assert_eq!(m.next_wakeup(), None);
}

#[test]
fn started_event_without_not_before_assumes_default_notice() {
    let mut m = started();
    let a = m.handle(doc(3, vec![event("E2", EventType::Preempt, None)]), t(10));
    assert!(has(
        &a,
        |a| matches!(a, Action::StartDrain { deadline, .. } if *deadline == t(35))
    ));
}

#[test]
fn late_observation_still_gives_the_workload_min_drain() {
    let mut m = started();
    // NotBefore already passed (clock skew or a slow first poll).
    let a = m.handle(
        doc(3, vec![event("E3", EventType::Preempt, Some(t(2)))]),
        t(4),
    );
    assert!(has(
        &a,
        |a| matches!(a, Action::StartDrain { deadline, .. } if *deadline == t(5))
    ));
    assert!(!has(&a, |a| matches!(a, Action::KillWorkload)));
}

#[test]
fn workload_that_ignores_the_drain_is_killed_at_the_deadline_then_approved() {
    let mut m = started();
    let _ = m.handle(
        doc(2, vec![event("E4", EventType::Preempt, Some(t(10)))]),
        t(0),
    );
    assert_eq!(m.next_wakeup(), Some(t(1)));
    let _ = m.handle(Input::Tick, t(1));
    let _ = m.handle(
        doc(2, vec![event("E4", EventType::Preempt, Some(t(10)))]),
        t(1),
    );
    assert_eq!(m.next_wakeup(), Some(t(2)));
    let a = m.handle(Input::Tick, ms(4999));
    assert!(!has(&a, |a| matches!(a, Action::KillWorkload)));
    let a = m.handle(Input::Tick, t(5));
    assert!(has(&a, |a| matches!(a, Action::KillWorkload)));
    let a = m.handle(Input::Tick, t(6));
    assert!(
        !has(&a, |a| matches!(a, Action::KillWorkload)),
        "kill only once"
    );
    let a = m.handle(Input::WorkloadDown, ms(5020));
    assert!(has(&a, |a| matches!(
        a,
        Action::DrainFinished { killed: true, .. }
    )));
    assert!(has(&a, |a| matches!(a, Action::Approve(_))));
}

#[test]
fn each_event_is_acted_on_once_across_polls_and_incarnations() {
    let mut m = started();
    let freeze = event("F1", EventType::Freeze, Some(t(900)));
    let a = m.handle(doc(2, vec![freeze.clone()]), t(0));
    assert_eq!(
        a.iter().filter(|a| matches!(a, Action::RunHook(_))).count(),
        1
    );
    for (i, incarnation) in [2, 3, 3, 4].into_iter().enumerate() {
        let now = t(i64::try_from(i).unwrap() + 1);
        let _ = m.handle(Input::Tick, now);
        let mut started = freeze.clone();
        started.status = EventStatus::Started;
        started.not_before = None;
        let a = m.handle(doc(incarnation, vec![started]), now);
        assert!(!has(&a, |a| matches!(
            a,
            Action::RunHook(_) | Action::Notify(_) | Action::StartDrain { .. }
        )));
    }
    assert!(m.is_ready(), "a freeze must not stop the workload");
}

#[test]
fn incarnation_change_is_reported_once() {
    let mut m = started();
    let a = m.handle(doc(5, vec![]), t(0));
    assert!(has(&a, |a| matches!(
        a,
        Action::IncarnationChanged { from: None, to: 5 }
    )));
    let _ = m.handle(Input::Tick, t(1));
    let a = m.handle(doc(5, vec![]), t(1));
    assert!(!has(&a, |a| matches!(a, Action::IncarnationChanged { .. })));
}

#[test]
fn events_for_other_vms_are_ignored_and_reported_once() {
    let mut m = started();
    let mut other = event("O1", EventType::Preempt, Some(t(30)));
    other.resources = vec!["vm-b".to_string(), "vm-c".to_string()];
    let a = m.handle(doc(2, vec![other.clone()]), t(0));
    assert!(has(&a, |a| matches!(
        a,
        Action::EventIgnored {
            reason: IgnoreReason::OtherVm,
            ..
        }
    )));
    assert!(!has(&a, |a| matches!(a, Action::StartDrain { .. })));
    let _ = m.handle(Input::Tick, t(1));
    let a = m.handle(doc(2, vec![other]), t(1));
    assert!(a.is_empty() || !has(&a, |a| matches!(a, Action::EventIgnored { .. })));
}

#[test]
fn vm_name_match_is_case_insensitive() {
    let mut m = started();
    let mut e = event("C1", EventType::Preempt, Some(t(30)));
    e.resources = vec!["VM-A".to_string()];
    let a = m.handle(doc(2, vec![e]), t(0));
    assert!(has(&a, |a| matches!(a, Action::StartDrain { .. })));
}

#[test]
fn failures_back_off_and_health_is_reported_once_per_change() {
    let mut m = started();
    let a = m.handle(Input::PollFailed(PollFailure::ServerError(500)), t(0));
    assert!(has(&a, |a| matches!(
        a,
        Action::HealthChanged(PollHealth::Failing {
            failure: PollFailure::ServerError(500),
            consecutive: 1
        })
    )));
    let mut now = t(0);
    let mut previous_gap = Duration::ZERO;
    let mut health_reports = 0;
    for _ in 0..10 {
        let wake = m.next_wakeup().unwrap();
        let gap = wake.since(now);
        assert!(
            gap >= Duration::from_secs(1),
            "never faster than the poll interval"
        );
        assert!(gap <= Duration::from_secs(4), "capped backoff");
        previous_gap = previous_gap.max(gap);
        now = wake;
        let a = m.handle(Input::Tick, now);
        assert!(has(&a, |a| matches!(a, Action::Poll { first: true })));
        let a = m.handle(Input::PollFailed(PollFailure::ServerError(500)), now);
        health_reports += a
            .iter()
            .filter(|a| matches!(a, Action::HealthChanged(_)))
            .count();
    }
    assert_eq!(health_reports, 0, "same failure again is not a change");
    assert!(previous_gap >= Duration::from_secs(2), "it did back off");
    let _ = m.handle(Input::Tick, m.next_wakeup().unwrap());
    let a = m.handle(Input::PollFailed(PollFailure::Throttled), now);
    assert!(has(&a, |a| matches!(
        a,
        Action::HealthChanged(PollHealth::Failing {
            failure: PollFailure::Throttled,
            ..
        })
    )));
    let _ = m.handle(Input::Tick, m.next_wakeup().unwrap());
    let a = m.handle(doc(1, vec![]), now);
    assert!(has(&a, |a| matches!(
        a,
        Action::HealthChanged(PollHealth::Healthy)
    )));
}

#[test]
fn warmup_gate_holds_readiness_until_a_check_passes() {
    let mut settings = AgentSettings::new(VM);
    settings.ready_check = true;
    let mut m = AgentMachine::new(settings, t(0), 9);
    let a = m.handle(Input::Tick, t(0));
    assert!(has(&a, |a| matches!(a, Action::RunReadyCheck)));
    assert!(!m.is_ready());
    let a = m.handle(Input::ReadyCheck { passed: false }, t(0));
    assert!(!has(&a, |a| matches!(a, Action::BecameReady)));
    assert!(
        !has(&a, |a| matches!(a, Action::RunReadyCheck)),
        "not before the interval"
    );
    let a = m.handle(Input::Tick, t(1));
    assert!(has(&a, |a| matches!(a, Action::RunReadyCheck)));
    let a = m.handle(Input::ReadyCheck { passed: true }, t(1));
    assert!(has(&a, |a| matches!(a, Action::BecameReady)));
    assert!(m.is_ready());
    let a = m.handle(Input::Tick, t(5));
    assert!(
        !has(&a, |a| matches!(a, Action::RunReadyCheck)),
        "the gate is passed once"
    );
}

#[test]
fn preempt_during_warmup_still_drains() {
    let mut settings = AgentSettings::new(VM);
    settings.ready_check = true;
    let mut m = AgentMachine::new(settings, t(0), 9);
    let _ = m.handle(Input::Tick, t(0));
    let a = m.handle(
        doc(2, vec![event("W1", EventType::Preempt, Some(t(30)))]),
        t(0),
    );
    assert!(has(&a, |a| matches!(a, Action::StartDrain { .. })));
    let a = m.handle(Input::ReadyCheck { passed: true }, t(1));
    assert!(!has(&a, |a| matches!(a, Action::BecameReady)));
    assert!(!m.is_ready());
}

#[test]
fn a_second_drain_event_with_less_notice_moves_the_deadline_and_is_approved_too() {
    let mut m = started();
    let _ = m.handle(
        doc(2, vec![event("P1", EventType::Preempt, Some(t(30)))]),
        t(0),
    );
    let _ = m.handle(Input::Tick, t(1));
    let a = m.handle(
        doc(
            3,
            vec![
                event("P1", EventType::Preempt, Some(t(30))),
                event("T1", EventType::Terminate, Some(t(12))),
            ],
        ),
        t(1),
    );
    assert!(has(
        &a,
        |a| matches!(a, Action::DeadlineMoved(d) if *d == t(7))
    ));
    assert!(
        !has(&a, |a| matches!(a, Action::StartDrain { .. })),
        "one drain only"
    );
    let a = m.handle(Input::WorkloadDown, t(2));
    assert!(has(
        &a,
        |a| matches!(a, Action::Approve(ids) if ids.len() == 2)
    ));
}

#[test]
fn failed_approval_is_retried_then_given_up_after_the_window() {
    let mut m = started();
    let _ = m.handle(
        doc(2, vec![event("A1", EventType::Preempt, Some(t(10)))]),
        t(0),
    );
    let _ = m.handle(Input::WorkloadDown, t(1));
    let mut now = t(1);
    let mut attempts = 1;
    loop {
        let a = m.handle(Input::ApprovalSent(Err(PollFailure::ServerError(503))), now);
        if let Some(Action::Exit(reason)) = a.iter().find(|a| matches!(a, Action::Exit(_))) {
            assert_eq!(
                reason,
                &ExitReason::Drained {
                    events: vec![EventId::new("A1")],
                    approved: false
                }
            );
            break;
        }
        // Skip the poll wakeups; go to the approval retry.
        loop {
            now = m.next_wakeup().expect("still running");
            let a = m.handle(Input::Tick, now);
            if has(&a, |a| matches!(a, Action::Poll { .. })) {
                let _ = m.handle(doc(2, vec![]), now);
            }
            if has(&a, |a| matches!(a, Action::Approve(_))) {
                break;
            }
        }
        attempts += 1;
        assert!(attempts < 200, "approval retries must be bounded");
    }
    assert!(attempts >= 3, "retried a few times, got {attempts}");
    assert!(
        now <= t(10 + 5 + 10 + 3),
        "gave up soon after the window: {now:?}"
    );
}

#[test]
fn agent_stop_drains_without_approving_and_a_second_stop_kills() {
    let mut m = started();
    let a = m.handle(Input::StopRequested, t(0));
    assert!(has(
        &a,
        |a| matches!(a, Action::StartDrain { reason: DrainReason::AgentStop, deadline } if *deadline == t(20))
    ));
    let a = m.handle(Input::StopRequested, t(1));
    assert_eq!(
        a.iter()
            .filter(|a| matches!(a, Action::KillWorkload))
            .count(),
        1
    );
    let a = m.handle(Input::WorkloadDown, t(1));
    assert!(has(&a, |a| matches!(a, Action::Exit(ExitReason::Stopped))));
    assert!(!has(&a, |a| matches!(a, Action::Approve(_))));
}

#[test]
fn workload_exiting_on_its_own_ends_the_agent() {
    let mut m = started();
    let a = m.handle(Input::WorkloadDown, t(3));
    assert_eq!(a, vec![Action::Exit(ExitReason::WorkloadExited)]);
    assert!(m.handle(Input::Tick, t(4)).is_empty());
}

#[test]
fn policy_can_make_freeze_drain_and_preempt_ignored() {
    let mut settings = AgentSettings::new(VM);
    settings.reactions.set(EventType::Freeze, Reaction::Drain);
    settings.reactions.set(EventType::Preempt, Reaction::Ignore);
    let mut m = AgentMachine::new(settings, t(0), 3);
    let _ = m.handle(Input::Tick, t(0));
    let a = m.handle(
        doc(
            2,
            vec![
                event("P9", EventType::Preempt, Some(t(30))),
                event("F9", EventType::Freeze, Some(t(600))),
            ],
        ),
        t(0),
    );
    assert!(has(
        &a,
        |a| matches!(a, Action::EventIgnored { reason: IgnoreReason::Policy, event } if event.id.as_str() == "P9")
    ));
    assert!(has(
        &a,
        |a| matches!(a, Action::StartDrain { reason: DrainReason::Event(e), .. } if e.id.as_str() == "F9")
    ));
}

#[test]
fn approval_can_be_turned_off() {
    let mut settings = AgentSettings::new(VM);
    settings.approve_events = false;
    let mut m = AgentMachine::new(settings, t(0), 3);
    let _ = m.handle(Input::Tick, t(0));
    let _ = m.handle(
        doc(2, vec![event("N1", EventType::Preempt, Some(t(30)))]),
        t(0),
    );
    let a = m.handle(Input::WorkloadDown, t(2));
    assert!(!has(&a, |a| matches!(a, Action::Approve(_))));
    assert!(has(&a, |a| matches!(
        a,
        Action::Exit(ExitReason::Drained {
            approved: false,
            ..
        })
    )));
}

fn heartbeats(actions: &[Action]) -> Vec<bool> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Heartbeat { healthy } => Some(*healthy),
            _ => None,
        })
        .collect()
}

#[test]
fn heartbeats_follow_the_interval_and_report_health_changes_at_once() {
    let mut settings = AgentSettings::new(VM);
    settings.heartbeat_interval = Some(Duration::from_secs(15));
    settings.ready_check = true;
    let mut m = AgentMachine::new(settings, t(0), 1);
    // Before the ready gate passes: unhealthy, reported at once.
    assert_eq!(heartbeats(&m.handle(Input::Tick, t(0))), [false]);
    assert!(m.next_wakeup().is_some_and(|w| w <= t(15)));
    assert!(
        heartbeats(&m.handle(Input::Tick, t(5))).is_empty(),
        "not due yet"
    );
    // The gate passes: healthy, reported at once rather than at the next interval.
    assert_eq!(
        heartbeats(&m.handle(Input::ReadyCheck { passed: true }, t(6))),
        [true]
    );
    assert!(heartbeats(&m.handle(Input::Tick, t(20))).is_empty());
    assert_eq!(
        heartbeats(&m.handle(Input::Tick, t(21))),
        [true],
        "every 15 s"
    );
    // A Preempt starts a drain: unhealthy at once.
    let out = m.handle(
        doc(1, vec![event("E1", EventType::Preempt, Some(t(60)))]),
        t(22),
    );
    assert_eq!(heartbeats(&out), [false]);
}

#[test]
fn no_heartbeats_without_an_interval() {
    let mut m = machine();
    for s in 0..100 {
        assert!(heartbeats(&m.handle(Input::Tick, t(s))).is_empty());
    }
}
