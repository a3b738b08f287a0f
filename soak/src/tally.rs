//! What each checked client received, and the figures drawn from it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// What one checked client (a stable member, or with `--recover` a churning one) saw.
#[derive(Default)]
pub(crate) struct Seen {
    /// (sender, seq) → times received.
    pub(crate) counts: HashMap<(u32, u32), u32>,
    /// Every sender's highest number received so far.
    highest: HashMap<u32, u32>,
    /// Messages received after a higher number of the same sender: each sender's order is
    /// the order it sent in (one connection, handled in order), so every receiver must see it.
    pub(crate) reordered: usize,
    /// Every delivery, duplicates included.
    pub(crate) deliveries: usize,
    /// Send-to-receive times, for the clients that never leave (a churning client's include
    /// its time away).
    pub(crate) latencies_us: Vec<u64>,
}

impl Seen {
    /// Counts the delivery of `sender`'s message `seq`, and its latency when given.
    pub(crate) fn record(&mut self, sender: u32, seq: u32, latency_us: Option<u64>) {
        self.deliveries += 1;
        let times = self.counts.entry((sender, seq)).or_insert(0);
        *times += 1;
        // A duplicate is counted as one, not also as out of order.
        if *times == 1 {
            match self.highest.entry(sender) {
                Entry::Occupied(highest) if *highest.get() > seq => self.reordered += 1,
                Entry::Occupied(mut highest) => *highest.get_mut() = seq,
                Entry::Vacant(slot) => {
                    slot.insert(seq);
                }
            }
        }
        if let Some(latency) = latency_us {
            self.latencies_us.push(latency);
        }
    }
}

/// The `p` quantile (0 to 1) of sorted `values`, 0 when there are none.
pub(crate) fn quantile(sorted: &[u64], p: f64) -> u64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

/// Microseconds as milliseconds with two decimals.
pub(crate) fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_and_a_late_message_are_told_apart() {
        let mut seen = Seen::default();
        for (sender, seq) in [(1, 0), (2, 0), (1, 2), (1, 1), (1, 2), (2, 1)] {
            seen.record(sender, seq, None);
        }
        assert_eq!(seen.deliveries, 6);
        assert_eq!(seen.counts[&(1, 2)], 2);
        // (1, 1) came after (1, 2); the second (1, 2) is a duplicate, not a reorder.
        assert_eq!(seen.reordered, 1);
        assert!(seen.latencies_us.is_empty());
    }

    #[test]
    fn quantiles_of_nothing_are_zero() {
        assert_eq!(quantile(&[], 0.99), 0);
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), 3);
        assert_eq!(quantile(&[1, 2, 3, 4], 0.99), 4);
    }
}
