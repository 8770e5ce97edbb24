//! Request counters, so tests and benchmarks can check how hard a client polls.

use std::collections::VecDeque;

use spotkit_core::Timestamp;

/// How many scheduled-events GET times are kept (the oldest are dropped first). At the
/// recommended one poll per second this is close to three hours of history.
pub const GET_TIMES_KEPT: usize = 10_000;

/// A copy of the request counters.
///
/// Every request that reaches a `/metadata` route counts, including ones rejected with 400 and
/// ones answered by a fault, because a client's poll rate is what they measure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestStats {
    /// `GET /metadata/scheduledevents` requests.
    pub scheduled_events_gets: u64,
    /// `POST /metadata/scheduledevents` requests (approvals, valid or not).
    pub scheduled_events_posts: u64,
    /// `GET /metadata/instance` requests.
    pub instance_gets: u64,
    /// `/metadata` requests refused with 400 for a missing `Metadata: true` header, an
    /// `X-Forwarded-For` header or a missing `api-version`.
    pub rejected_requests: u64,
    /// Scheduled-events GETs answered by an injected fault.
    pub faulted_responses: u64,
    /// Arrival times of the last [`GET_TIMES_KEPT`] scheduled-events GETs, oldest first.
    pub recent_get_times: Vec<Timestamp>,
}

/// The live counters.
#[derive(Clone, Debug, Default)]
pub(crate) struct StatsRecorder {
    scheduled_events_gets: u64,
    scheduled_events_posts: u64,
    instance_gets: u64,
    rejected_requests: u64,
    faulted_responses: u64,
    recent_get_times: VecDeque<Timestamp>,
}

impl StatsRecorder {
    pub(crate) fn scheduled_events_get(&mut self, now: Timestamp) {
        self.scheduled_events_gets += 1;
        if self.recent_get_times.len() >= GET_TIMES_KEPT {
            self.recent_get_times.pop_front();
        }
        self.recent_get_times.push_back(now);
    }

    pub(crate) fn scheduled_events_post(&mut self) {
        self.scheduled_events_posts += 1;
    }

    pub(crate) fn instance_get(&mut self) {
        self.instance_gets += 1;
    }

    pub(crate) fn rejected(&mut self) {
        self.rejected_requests += 1;
    }

    pub(crate) fn faulted(&mut self) {
        self.faulted_responses += 1;
    }

    pub(crate) fn snapshot(&self) -> RequestStats {
        RequestStats {
            scheduled_events_gets: self.scheduled_events_gets,
            scheduled_events_posts: self.scheduled_events_posts,
            instance_gets: self.instance_gets,
            rejected_requests: self.rejected_requests,
            faulted_responses: self.faulted_responses,
            recent_get_times: self.recent_get_times.iter().copied().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_get_times_are_kept() {
        let mut stats = StatsRecorder::default();
        let extra = 5;
        for ms in 0..(GET_TIMES_KEPT + extra) {
            stats.scheduled_events_get(Timestamp::from_unix_millis(i64::try_from(ms).unwrap()));
        }
        let snapshot = stats.snapshot();
        assert_eq!(
            snapshot.scheduled_events_gets,
            u64::try_from(GET_TIMES_KEPT + extra).unwrap()
        );
        assert_eq!(snapshot.recent_get_times.len(), GET_TIMES_KEPT);
        assert_eq!(
            snapshot.recent_get_times.first(),
            Some(&Timestamp::from_unix_millis(i64::try_from(extra).unwrap()))
        );
    }
}
