//! Deterministic, seeded simulation of Hearth nodes over the sans-IO cores.
//!
//! Simulated nodes drive the same cores as the real node — pairing
//! ([`world`], [`node`]: `hearth_protocol::pairing`, `token`, `frame`),
//! shared folders, bank views and backups ([`scenario`]: `hearth_crdt` and
//! `hearth_protocol::{share, bank, backup}`) — over a simulated network
//! ([`net`]) with loss, duplication, reordering, one-way partitions and
//! crashes. One seeded RNG, a virtual clock and an event queue per run; the
//! [`invariants`] are checked as the run goes and once it has settled.
//! Nothing reads the real clock or OS randomness, and every map whose order
//! can matter is a `BTreeMap`, so a seed replays exactly: the trace of a run
//! (at least one line per event) hashes to the same BLAKE3 value every time.
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
