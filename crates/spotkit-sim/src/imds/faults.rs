//! Fault injection for `GET /metadata/scheduledevents`.
//!
//! Faults wait in a FIFO queue. Each scheduled-events GET consumes one use of the fault at the
//! front; when its count reaches zero the next fault takes over. A fault without a count stays at
//! the front until the queue is cleared, so anything queued behind it never fires.

use std::collections::VecDeque;
use std::time::Duration;

/// What a faulty answer looks like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Answer with this HTTP status and a short JSON error body (e.g. 500, 429, 410, 404).
    Status(u16),
    /// Answer 200 with a body that is not JSON at all.
    Garbage,
    /// Answer 200 with the real document cut off in the middle.
    Truncated,
    /// Wait this long, then answer normally (with the document as it is after the wait).
    Slow(Duration),
}

/// A fault and how many more requests it applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What the faulty answer looks like.
    pub kind: FaultKind,
    /// Requests left; `None` = until the queue is cleared.
    pub remaining: Option<u32>,
}

impl Fault {
    /// A fault for the next `count` requests.
    #[must_use]
    pub fn times(kind: FaultKind, count: u32) -> Self {
        Self {
            kind,
            remaining: Some(count),
        }
    }

    /// A fault for every request until the queue is cleared.
    #[must_use]
    pub fn until_cleared(kind: FaultKind) -> Self {
        Self {
            kind,
            remaining: None,
        }
    }
}

/// The pending faults, front first.
#[derive(Clone, Debug, Default)]
pub(crate) struct FaultQueue {
    pending: VecDeque<Fault>,
}

impl FaultQueue {
    pub(crate) fn push(&mut self, fault: Fault) {
        // A zero-count fault would never fire; dropping it keeps `pending()` honest.
        if fault.remaining != Some(0) {
            self.pending.push_back(fault);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }

    pub(crate) fn pending(&self) -> Vec<Fault> {
        self.pending.iter().cloned().collect()
    }

    /// Uses up one application of the front fault and returns it.
    pub(crate) fn take(&mut self) -> Option<FaultKind> {
        let front = self.pending.front_mut()?;
        let kind = front.kind.clone();
        if let Some(remaining) = front.remaining.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                self.pending.pop_front();
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_in_order_for_their_count() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::times(FaultKind::Status(500), 2));
        queue.push(Fault::times(FaultKind::Garbage, 1));
        queue.push(Fault::times(FaultKind::Truncated, 0));
        assert_eq!(queue.pending().len(), 2);
        assert_eq!(queue.take(), Some(FaultKind::Status(500)));
        assert_eq!(queue.take(), Some(FaultKind::Status(500)));
        assert_eq!(queue.take(), Some(FaultKind::Garbage));
        assert_eq!(queue.take(), None);
    }

    #[test]
    fn an_uncounted_fault_lasts_until_cleared() {
        let mut queue = FaultQueue::default();
        queue.push(Fault::until_cleared(FaultKind::Truncated));
        queue.push(Fault::times(FaultKind::Garbage, 1));
        for _ in 0..5 {
            assert_eq!(queue.take(), Some(FaultKind::Truncated));
        }
        queue.clear();
        assert_eq!(queue.take(), None);
    }
}
