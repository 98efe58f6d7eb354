//! keel-ops: parse the command line and run one operator command.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = keel_ops::Cli::parse();
    keel_ops::run(cli, &keel_config::EnvSource).await
}
