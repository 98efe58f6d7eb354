//! One module per command family; `dispatch` routes the parsed command line.

pub(crate) mod audit;
pub(crate) mod backup;
mod config;
pub(crate) mod health;
pub(crate) mod migrate;
pub(crate) mod queue;
mod remote;
pub(crate) mod smoke;
pub(crate) mod telemetry;
pub(crate) mod tenancy;

use crate::cli::{Cli, Command, ConfigCommand, DbCommand};
use crate::output::OpsError;
use keel_config::{Settings, Source};

pub(crate) async fn dispatch(cli: Cli, source: &dyn Source) -> Result<u8, OpsError> {
    // Remote mode covers queue, cron and health (without --url, which keeps naming the server
    // whose /api/health to ask); every other command works on the database as before.
    if matches!(&cli.command, Command::Queue { .. } | Command::Cron { .. } | Command::Health(_)) {
        if let Some(r) = remote::from(cli.remote.clone(), source)? {
            match cli.command {
                Command::Queue { command } => return remote::queue(&r, command).await,
                Command::Cron { command } => return remote::cron(&r, command).await,
                Command::Health(args) if args.url.is_none() => return remote::health(&r, &args).await,
                _ => {}
            }
        }
    }
    match cli.command {
        Command::Migrate { dry_run, json } => migrate::run(&settings(source)?, dry_run, json).await,
        Command::Config { command: ConfigCommand::Check { json } } => Ok(config::check(source, json)),
        Command::Db { command: DbCommand::Audit(args) } => audit::run(&settings(source)?, args).await,
        Command::Backup { command } => backup::run(&settings(source)?, command).await,
        Command::Smoke(args) => smoke::run(args).await,
        Command::Queue { command } => queue::queue(&settings(source)?, source, command).await,
        Command::Cron { command } => queue::cron(&settings(source)?, command).await,
        Command::Telemetry { command } => telemetry::export(&settings(source)?, command).await,
        Command::Scale { command } => telemetry::gate(&settings(source)?, command).await,
        Command::Health(args) => health::run(source, args).await,
        Command::Org { command } => tenancy::org(&settings(source)?, command).await,
        Command::User { command } => tenancy::user(&settings(source)?, command).await,
        Command::Token { command } => tenancy::token(&settings(source)?, command).await,
        Command::Operator { command } => tenancy::operator(&settings(source)?, command).await,
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "keel-ops", &mut std::io::stdout());
            Ok(crate::exit::OK)
        }
    }
}

/// The shared settings, or a usage error listing every problem.
fn settings(source: &dyn Source) -> Result<Settings, OpsError> {
    Settings::load(source).map_err(|p| OpsError::usage(p.to_string()))
}
