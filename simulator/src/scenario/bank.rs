//! placeholder
use super::{Run, Sim};
use crate::world::Config;

/// Runs the bank scenario of `cfg`.
pub fn run(cfg: &Config) -> Run {
    let sim: Sim<()> = Sim::new(cfg, 3);
    sim.into()
}
