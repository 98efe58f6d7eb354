//! The command tree (clap derive). Command and flag names are a contract: runbooks use them.

use clap::{Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  the command ran and found a problem (failed check, audit findings over --fail-on)
  2  bad configuration or command line; nothing was done
  3  a dependency is unavailable (database unreachable, extension missing)

Configuration comes from the environment, as for keel-api: DATABASE_URL (unset: ./data/keel.db), …
Run `keel-ops config check` to validate it.

Remote mode: with --remote URL (or KEEL_REMOTE_URL) and an operator token in KEEL_TOKEN,
`queue`, `cron` and `health` go through that keel-api's /api/ops/* instead of the database.";

#[derive(Debug, Parser)]
#[command(name = "keel-ops", version, about = "Operate a Keel deployment: migrations, configuration, queue, cron, health, audits", after_help = EXIT_CODES)]
pub struct Cli {
    /// Run `queue`, `cron` and `health` through this keel-api's operator API (`/api/ops/*`)
    /// instead of the database, with the operator token in KEEL_TOKEN. Default: KEEL_REMOTE_URL.
    #[arg(long, global = true, value_name = "URL")]
    pub remote: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending database migrations (or list them with --dry-run).
    Migrate {
        /// List what would be applied and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Database commands.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Logical backups of the business tables: export, verify, restore.
    Backup {
        #[command(subcommand)]
        command: crate::cmd::backup::BackupCommand,
    },
    /// Semantic checks of a running deployment: a 2xx with a failure payload is a failure.
    Smoke(crate::cmd::smoke::SmokeArgs),
    /// The job queue: stats, list, show, enqueue, retry, cancel, requeue-dead, pause, resume, prune.
    Queue {
        #[command(subcommand)]
        command: crate::cmd::queue::QueueCommand,
    },
    /// Scheduled work: `cron runs`, `cron pause TASK|all`, `cron resume TASK|all`.
    Cron {
        #[command(subcommand)]
        command: crate::cmd::queue::CronCommand,
    },
    /// Production telemetry: `telemetry export --days 7 --out reports/production-telemetry.md`.
    Telemetry {
        #[command(subcommand)]
        command: crate::cmd::telemetry::TelemetryCommand,
    },
    /// Scale decisions: `scale gate` prints the Phase 0 decision, load target and cost gate.
    Scale {
        #[command(subcommand)]
        command: crate::cmd::telemetry::ScaleCommand,
    },
    /// Health: `health [--url URL]` asks a running keel-api; `--deep` inspects the database.
    Health(crate::cmd::health::HealthArgs),
    /// Organizations: `org create NAME [--parent ORG]`.
    Org {
        #[command(subcommand)]
        command: crate::cmd::tenancy::OrgCommand,
    },
    /// Users: `user create --email E --org ORG --role ROLE [--password-stdin]`, `user unlock E`.
    User {
        #[command(subcommand)]
        command: crate::cmd::tenancy::UserCommand,
    },
    /// API tokens: `token issue --user E [--operator]` (printed once), `token revoke ID`.
    Token {
        #[command(subcommand)]
        command: crate::cmd::tenancy::TokenCommand,
    },
    /// Platform operators: `operator grant E`, `operator revoke E`, `operator list`.
    Operator {
        #[command(subcommand)]
        command: crate::cmd::tenancy::OperatorCommand,
    },
    /// Print a shell completion script: `keel-ops completions bash > /etc/bash_completion.d/keel-ops`.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the environment without starting anything; prints every problem at once.
    Check {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Lint a PostgreSQL schema: indexes, foreign keys, row-level security, views, functions.
    Audit(crate::cmd::audit::AuditArgs),
}
