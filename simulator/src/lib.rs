//! Deterministic, seeded simulation of Hearth's pairing protocol.
//!
//! Many simulated nodes ([`node`]) drive the same sans-IO core as the real
//! node (`hearth_protocol::pairing`, `token`, `frame`) over a simulated
//! network ([`net`]) with loss, duplication, reordering, one-way partitions
//! and crashes. A [`world`] owns the one seeded RNG, the virtual clock, the
//! event queue and the workload, and checks the [`invariants`] after every
//! event. Nothing reads the real clock or OS randomness, and every map whose
//! order can matter is a `BTreeMap`, so a seed replays exactly: the trace of
//! a run (at least one line per event) hashes to the same BLAKE3 value every time.
//!
//! ```
//! let outcome = hearth_simulator::run_seed(&hearth_simulator::Config::new(42));
//! assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
//! ```

pub mod invariants;
pub mod net;
pub mod node;
pub mod scenario;
pub mod world;

pub use invariants::Violation;
pub use world::{run_seed, Config, Faults, Mutant, Outcome, Scenario, Stats};
