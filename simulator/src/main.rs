//! `hearth-simulator`: runs the simulation (pairing, shares, bank views,
//! backups) over a range of seeds and prints a summary. A failing seed prints the command that replays it and
//! the end of its trace, and the exit code is non-zero.
//!
//! The wall clock is read here only, to report how long the runs took; the
//! simulation itself never sees it.

use std::process::ExitCode;

use clap::Parser;
use hearth_simulator::invariants::KNOWN_ISSUES;
use hearth_simulator::{run_seed, Config, Faults, Mutant, Outcome, Scenario, Stats};

/// Deterministic simulation of Hearth nodes over a faulty network.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Number of seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed; runs seeds first-seed .. first-seed + seeds.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Honest nodes per run (a hostile node is added).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(2..=200))]
    nodes: u16,
    /// Workload events per run (settling comes on top).
    #[arg(long, default_value_t = 1_000)]
    events: u64,
    /// Faults to inject.
    #[arg(long, value_enum, default_value_t = Faults::All)]
    faults: Faults,
    /// What to simulate (all: every scenario for each seed).
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// Run with a deliberately broken rule (the run should fail).
    #[arg(long, value_enum)]
    mutant: Option<Mutant>,
    /// Threads running seeds (the results do not depend on it).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Fail on known issues too (see simulator/README.md).
    #[arg(long)]
    strict: bool,
    /// Print the whole trace of every run.
    #[arg(long)]
    trace: bool,
    /// Trace lines shown for a failing seed.
    #[arg(long, default_value_t = 30)]
    tail: usize,
}

fn faults_arg(faults: Faults) -> &'static str {
    match faults {
        Faults::None => "none",
        Faults::Net => "net",
        Faults::All => "all",
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    #[allow(clippy::disallowed_methods)] // wall time of the whole batch, for the report only
    let started = std::time::Instant::now();
    let seeds: Vec<u64> = (args.first_seed..args.first_seed.saturating_add(args.seeds)).collect();
    let config = |seed| Config {
        seed,
        nodes: args.nodes.into(),
        events: args.events,
        faults: args.faults,
        strict: args.strict,
        scenario: args.scenario,
        mutant: args.mutant,
    };
    let outcomes = run_all(&seeds, usize::from(args.jobs), args.trace, &config);
    let mut total = Stats::default();
    let mut failed = Vec::new();
    let mut known_seeds = 0u64;
    for outcome in &outcomes {
        let seed = outcome.seed;
        total.merge(&outcome.stats);
        if args.trace {
            for line in &outcome.trace {
                println!("{line}");
            }
            println!("seed {seed}: trace {}", outcome.trace_hash);
        }
        if !outcome.known.is_empty() {
            known_seeds += 1;
        }
        if let Some(failure) = &outcome.failure {
            failed.push(seed);
            if failed.len() <= 3 {
                println!("FAILED seed {seed}: {failure}");
                println!(
                    "replay: cargo run -p hearth-simulator --release -- --seeds 1 --first-seed {seed} --nodes {} --events {} --faults {} --scenario {}{}{} --trace",
                    args.nodes,
                    args.events,
                    faults_arg(args.faults),
                    args.scenario.name(),
                    args.mutant.map(|m| format!(" --mutant {}", m.name())).unwrap_or_default(),
                    if args.strict { " --strict" } else { "" },
                );
                println!("last {} trace lines:", args.tail.min(outcome.trace.len()));
                for line in outcome.trace.iter().skip(outcome.trace.len().saturating_sub(args.tail)) {
                    println!("  {line}");
                }
                println!();
            }
        }
    }
    print_summary(&args, &total, started.elapsed().as_secs_f64());
    if known_seeds > 0 {
        println!("known issues met in {known_seeds} seed(s), tolerated (use --strict to fail on them):");
        for (kind, what) in KNOWN_ISSUES {
            let n = total.get(&format!("known_issue.{kind}"));
            if n > 0 {
                println!("  {kind} x{n}: {what}");
            }
        }
    }
    if failed.is_empty() {
        println!("all {} seed(s) passed", args.seeds);
        ExitCode::SUCCESS
    } else {
        println!("{} of {} seed(s) FAILED: {:?}", failed.len(), args.seeds, &failed[..failed.len().min(20)]);
        ExitCode::FAILURE
    }
}

/// Runs every seed on `jobs` threads; the outcomes come back in seed order.
/// The trace of a seed that passed is dropped unless `traces` (its hash is
/// kept): a thousand seeds of every scenario would hold gigabytes.
fn run_all(seeds: &[u64], jobs: usize, traces: bool, config: &(dyn Fn(u64) -> Config + Sync)) -> Vec<Outcome> {
    let run = |seed| {
        let mut outcome = run_seed(&config(seed));
        if !traces && outcome.failure.is_none() {
            outcome.trace = Vec::new();
        }
        outcome
    };
    if jobs <= 1 {
        return seeds.iter().map(|&s| run(s)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                let outcome = run(seed);
                done.lock().unwrap_or_else(|e| e.into_inner()).push((i, outcome));
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, o)| o).collect()
}

/// Prints the counters grouped by section (`net.lost` under `net`).
fn print_summary(args: &Args, total: &Stats, secs: f64) {
    println!(
        "{} seed(s), {} scenario run(s) ({}) of {} honest node(s) + hostile ones, {} workload events each, faults {}{}, in {secs:.1} s ({:.1} seeds/s): {} events",
        args.seeds,
        total.get("sim.runs"),
        args.scenario.name(),
        args.nodes,
        args.events,
        faults_arg(args.faults),
        args.mutant.map(|m| format!(", mutant {}", m.name())).unwrap_or_default(),
        args.seeds as f64 / secs.max(1e-9),
        total.get("sim.events"),
    );
    let sum = |prefix: &str| total.counters.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum::<u64>();
    println!(
        "  totals: faults injected {} (+ {} messages lost, {} duplicated, {} cut), invariant checks {}",
        sum("fault."),
        total.get("net.lost"),
        total.get("net.duplicated"),
        total.get("net.cut"),
        sum("invariants."),
    );
    let mut section = String::new();
    let mut line = String::new();
    for (key, value) in &total.counters {
        let (head, tail) = key.split_once('.').unwrap_or(("", key.as_str()));
        if head == "sim" {
            continue;
        }
        if head != section {
            if !line.is_empty() {
                println!("{line}");
            }
            section = head.to_string();
            line = if head.is_empty() { String::new() } else { format!("  {head}:") };
        }
        line.push_str(&format!(" {tail}={value}"));
    }
    if !line.is_empty() {
        println!("{line}");
    }
}
