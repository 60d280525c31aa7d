use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = kam::cli::Cli::parse();
    match kam::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
