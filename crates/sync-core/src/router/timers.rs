//! Every deadline the router owns, ordered, so the host can ask for the next one after each call
//! without the router walking all of its connections and paths.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use super::{ConnId, PathKey};

/// What a deadline belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// The oldest pending fragment group of a connection's decoder: the legacy one (`None`) or
    /// the one of a multiplexed channel.
    Fragments {
        conn: ConnId,
        channel: Option<Arc<str>>,
    },
    /// The startup hold of a path generation.
    Hold(PathKey),
    /// The end of the time a path generation without clients is kept warm.
    Warm(PathKey),
}

#[derive(Debug, Default)]
pub(super) struct Timers {
    due: BTreeSet<(Instant, Timer)>,
}

impl Timers {
    pub(super) fn next(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Moves `timer` from `*scheduled` (what its owner last registered) to `at`.
    pub(super) fn set(
        &mut self,
        timer: &Timer,
        scheduled: &mut Option<Instant>,
        at: Option<Instant>,
    ) {
        if *scheduled == at {
            return;
        }
        if let Some(old) = scheduled.take() {
            self.due.remove(&(old, timer.clone()));
        }
        if let Some(at) = at {
            self.due.insert((at, timer.clone()));
        }
        *scheduled = at;
    }

    /// Removes and returns the timers due by `now`. Their owners must forget what they had
    /// scheduled before registering a new deadline.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<Timer> {
        let mut due = Vec::new();
        while self.due.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, timer)) = self.due.pop_first() {
                due.push(timer);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn keeps_one_deadline_per_owner_in_time_order() {
        let start = Instant::now();
        let mut timers = Timers::default();
        let hold = Timer::Hold(PathKey(1));
        let fragments = Timer::Fragments {
            conn: ConnId(7),
            channel: None,
        };
        let (mut hold_at, mut fragments_at) = (None, None);
        timers.set(&hold, &mut hold_at, Some(start + Duration::from_secs(5)));
        timers.set(
            &fragments,
            &mut fragments_at,
            Some(start + Duration::from_secs(9)),
        );
        timers.set(
            &fragments,
            &mut fragments_at,
            Some(start + Duration::from_secs(2)),
        );
        assert_eq!(timers.next(), Some(start + Duration::from_secs(2)));
        assert_eq!(
            timers.take_due(start + Duration::from_secs(5)),
            vec![fragments, hold.clone()]
        );
        assert_eq!(timers.next(), None);
        timers.set(&hold, &mut None, Some(start));
        timers.set(&hold, &mut Some(start), None);
        assert_eq!(timers.next(), None);
    }
}
