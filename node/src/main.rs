//! The `hearth` binary; everything lives in the `hearth_node` library.

fn main() -> std::process::ExitCode {
    hearth_node::cli::main()
}
