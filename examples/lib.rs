//! Runnable Hearth scenarios; each example file starts with what it shows
//! and the `cargo run -p hearth-examples --example NAME` line that runs it.
