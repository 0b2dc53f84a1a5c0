//! The batching both store writers share (registrations, subscription dialogs): wait for one
//! item, then take whatever else has queued meanwhile, so that a burst costs one transaction
//! and one log write instead of one per item.

use std::sync::mpsc::Receiver;

/// The next batch: blocks for the first item, then adds those already queued, at most `max`
/// in all. `None` once every sender is gone and the queue is empty.
pub(crate) fn next_batch<T>(rx: &Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = rx.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    Some(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_what_has_queued_up_to_the_bound_then_ends_with_the_senders() {
        let (tx, rx) = std::sync::mpsc::channel();
        for n in 0..5 {
            tx.send(n).unwrap();
        }
        assert_eq!(next_batch(&rx, 3), Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&rx, 3), Some(vec![3, 4]));
        drop(tx);
        assert_eq!(next_batch(&rx, 3), None);
    }
}
