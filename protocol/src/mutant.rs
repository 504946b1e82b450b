//! Deliberately broken rules, for showing that the simulator's invariants
//! have teeth (`hearth-simulator --mutant ...`), as `hearth_crdt::mutant`.
//!
//! Only with the `mutants` feature, and even then off unless a thread turns
//! one on with [`set`]: a build with the feature behaves exactly like one
//! without until then.

/// A broken rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mutant {
    /// `backup::audit::verify` takes any answer to the right challenge,
    /// without comparing its bytes with the block's hash.
    UnverifiedAudits,
    /// `blob::Fetcher` takes a chunk's bytes without checking their hash.
    UnverifiedChunks,
}

#[cfg(feature = "mutants")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Mutant>> = const { std::cell::Cell::new(None) };
}

/// Turns `mutant` on (or, with `None`, every mutant off) for this thread.
#[cfg(feature = "mutants")]
pub fn set(mutant: Option<Mutant>) {
    ACTIVE.with(|a| a.set(mutant));
}

/// Whether `mutant` is on in this thread.
#[inline]
pub fn active(mutant: Mutant) -> bool {
    #[cfg(feature = "mutants")]
    {
        ACTIVE.with(|a| a.get() == Some(mutant))
    }
    #[cfg(not(feature = "mutants"))]
    {
        let _ = mutant;
        false
    }
}
