//! Each offset read once per ownership of its partition: an exactly-once step drops
//! a record its consumer hands out again without having been asked to (no rewind,
//! same lease).
//!
//! Why: on a real broker a repartition step once wrote the same input record twice
//! into one committed transaction, with no abort or rewind in between, after its
//! partition's fetching paused around a cooperative rebalance of the step's group and
//! restarted one offset early (the pattern of librdkafka #4636, fixed in 2.4; kfn
//! links 2.12): a record counted twice under exactly-once. Offsets only grow within
//! one lease unless the loop rewinds, so one comparison per record refuses a second
//! copy, whatever handed it out.

use std::collections::HashMap;

use crate::record::Record;

/// The next offset expected of each partition, under the lease it was read with.
#[derive(Debug, Default)]
pub struct Handed {
    next: HashMap<i32, (u64, i64)>,
    /// Records dropped as read again, since the start.
    pub dropped: u64,
}

impl Handed {
    /// Whether `record` is new: past every offset already handed out under its
    /// lease. A new lease (the partition assigned again) starts afresh.
    pub fn admit(&mut self, record: &Record) -> bool {
        match self.next.get_mut(&record.partition) {
            Some((lease, next)) if *lease == record.lease => {
                if record.offset < *next {
                    self.dropped += 1;
                    return false;
                }
                *next = record.offset + 1;
            }
            _ => {
                self.next
                    .insert(record.partition, (record.lease, record.offset + 1));
            }
        }
        true
    }

    /// The loop moved `partition` back to `offset` (after an aborted transaction):
    /// what follows it is expected again.
    pub fn rewound(&mut self, partition: i32, offset: i64) {
        if let Some((_, next)) = self.next.get_mut(&partition) {
            *next = offset;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(partition: i32, offset: i64, lease: u64) -> Record {
        Record {
            key: None,
            value: Vec::new(),
            headers: Vec::new(),
            timestamp_ms: 0,
            topic: "in".into(),
            partition,
            offset,
            lease,
        }
    }

    #[test]
    fn an_offset_handed_out_again_under_the_same_lease_is_dropped() {
        let mut h = Handed::default();
        for o in [10, 11, 12] {
            assert!(h.admit(&at(4, o, 1)));
        }
        // The consumer restarts one too early: 12 again, then on.
        assert!(!h.admit(&at(4, 12, 1)));
        assert!(h.admit(&at(4, 13, 1)));
        // Gaps (transaction markers, aborted records) are fine; other partitions
        // are their own.
        assert!(h.admit(&at(4, 20, 1)));
        assert!(h.admit(&at(5, 3, 1)));
        assert_eq!(h.dropped, 1);
    }

    #[test]
    fn a_rewind_or_a_new_lease_reads_the_same_offsets_again() {
        let mut h = Handed::default();
        for o in 0..5 {
            assert!(h.admit(&at(0, o, 1)));
        }
        h.rewound(0, 2);
        for o in 2..5 {
            assert!(h.admit(&at(0, o, 1)), "offset {o} after the rewind");
        }
        // Reassigned (a new lease): read from the committed offset again.
        for o in 1..5 {
            assert!(h.admit(&at(0, o, 2)), "offset {o} under the new lease");
        }
        assert_eq!(h.dropped, 0);
    }
}
