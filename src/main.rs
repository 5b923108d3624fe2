//! The `phlo` command.

fn main() -> std::process::ExitCode {
    phlo::cli::main()
}
