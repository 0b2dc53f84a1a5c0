//! One deadline heap per worker thread, cancelled lazily: a client's transaction carries a
//! generation number, and a timer whose generation is no longer the client's is dropped when it
//! comes due instead of being searched for and removed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Pending deadlines of one thread's clients.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
}

/// A deadline that came due: which client, for which of its transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timer {
    /// The client's index within its thread.
    pub client: u32,
    /// The transaction generation the timer was set for.
    pub generation: u32,
}

impl Timers {
    /// Sets a deadline; it stays in the heap until due, even if the transaction ends first.
    pub fn schedule(&mut self, at: Instant, client: u32, generation: u32) {
        self.heap.push(Reverse(Entry {
            at,
            client,
            generation,
        }));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Removes and returns one deadline at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        if self.next()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| Timer {
            client: e.client,
            generation: e.generation,
        })
    }

    /// Forgets every deadline (the heap keeps its capacity).
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    at: Instant,
    client: u32,
    generation: u32,
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn due_timers_come_out_in_deadline_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.schedule(t0 + Duration::from_millis(20), 2, 0);
        timers.schedule(t0 + Duration::from_millis(10), 1, 5);
        timers.schedule(t0 + Duration::from_millis(30), 3, 0);
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(timers.pop_due(t0), None);
        let now = t0 + Duration::from_millis(25);
        assert_eq!(
            timers.pop_due(now),
            Some(Timer {
                client: 1,
                generation: 5
            })
        );
        assert_eq!(timers.pop_due(now).map(|t| t.client), Some(2));
        assert_eq!(timers.pop_due(now), None);
        timers.clear();
        assert_eq!(timers.next(), None);
    }
}
