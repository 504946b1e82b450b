//! The simulated network: decides what happens to each message a node sends.
//!
//! It stands in for libp2p request-response over an authenticated transport:
//! the sender of a message is always who it claims to be (Noise/TLS), but
//! messages may be lost, duplicated, delayed (with jitter, and sometimes for
//! seconds, which reorders them) or cut by a partition. Partitions are per
//! direction, so `a -> b` can be cut while `b -> a` still works. The network
//! owns no clock and no queue: it draws a fate from the world's RNG and the
//! world schedules the deliveries, so every decision comes from the one seed.

use std::collections::BTreeSet;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Probabilities of the network faults, per message sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetFaults {
    /// The message vanishes.
    pub loss: f64,
    /// The message arrives twice (two independent latencies).
    pub dup: f64,
    /// The message takes 0.5 to 5 s, overtaking later ones and outliving
    /// the joiner's timeout.
    pub slow: f64,
}

impl NetFaults {
    /// A perfect network (latency and jitter only).
    pub const NONE: Self = Self { loss: 0.0, dup: 0.0, slow: 0.0 };
    /// A lossy, duplicating, reordering network.
    pub const LOSSY: Self = Self { loss: 0.08, dup: 0.04, slow: 0.06 };
}

/// Which half of a request-response exchange a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A pairing request (joiner to inviter).
    Request,
    /// A pairing response (inviter to joiner).
    Response,
}

/// One message in flight: an encoded frame plus the envelope the transport
/// would know (authenticated sender, the connection it travels on).
#[derive(Debug, Clone)]
pub struct Msg {
    /// Sequence number, for the trace.
    pub id: u64,
    /// Sending node (authenticated).
    pub from: usize,
    /// The sender's incarnation when it sent (a response goes back to it).
    pub from_incarnation: u64,
    /// Receiving node.
    pub to: usize,
    /// The receiver's incarnation the connection was made to: a restarted
    /// node has new connections and never sees the old ones' messages.
    pub to_incarnation: u64,
    /// Request-response correlation id (one per request attempt).
    pub conv: u64,
    /// Request or response.
    pub kind: Kind,
    /// The complete frame: length prefix and CBOR body.
    pub bytes: Vec<u8>,
}

/// Link state and fault probabilities.
#[derive(Debug)]
pub struct Network {
    faults: NetFaults,
    cut: BTreeSet<(usize, usize)>,
}

impl Network {
    /// A network with all links up.
    pub fn new(faults: NetFaults) -> Self {
        Self { faults, cut: BTreeSet::new() }
    }

    /// Changes the fault probabilities (the world turns them off to settle).
    pub fn set_faults(&mut self, faults: NetFaults) {
        self.faults = faults;
    }

    /// The delays after which copies of one message arrive: none if it is
    /// lost, two if it is duplicated.
    pub fn fate(&self, rng: &mut ChaCha8Rng) -> Vec<u64> {
        if rng.gen_bool(self.faults.loss) {
            return Vec::new();
        }
        let copies = if rng.gen_bool(self.faults.dup) { 2 } else { 1 };
        (0..copies).map(|_| self.latency(rng)).collect()
    }

    fn latency(&self, rng: &mut ChaCha8Rng) -> u64 {
        let base = rng.gen_range(5..=60);
        if rng.gen_bool(self.faults.slow) {
            base + rng.gen_range(500..=5_000)
        } else {
            base + rng.gen_range(0..=40)
        }
    }

    /// Cuts the link `from -> to` (one direction only).
    pub fn cut(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
    }

    /// Restores both directions between `a` and `b`.
    pub fn heal(&mut self, a: usize, b: usize) {
        self.cut.remove(&(a, b));
        self.cut.remove(&(b, a));
    }

    /// Restores every link.
    pub fn heal_all(&mut self) {
        self.cut.clear();
    }

    /// Whether messages from `from` to `to` are currently dropped.
    pub fn is_cut(&self, from: usize, to: usize) -> bool {
        self.cut.contains(&(from, to))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_partition_can_cut_one_direction_only() {
        let mut net = Network::new(NetFaults::NONE);
        net.cut(0, 1);
        assert!(net.is_cut(0, 1));
        assert!(!net.is_cut(1, 0));
        net.heal(1, 0);
        assert!(!net.is_cut(0, 1));
    }

    #[test]
    fn a_perfect_network_delivers_every_message_once() {
        let net = Network::new(NetFaults::NONE);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..1000 {
            let delays = net.fate(&mut rng);
            assert_eq!(delays.len(), 1);
            assert!((5..=100).contains(&delays[0]));
        }
    }
}
