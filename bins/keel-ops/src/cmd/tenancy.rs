//! `keel-ops org|user|token|operator`: creating the tenants, people and credentials of a
//! deployment, and the platform operators. Each command prints what it created; with `--json`
//! an object with `id` (and `token`).
//! `user unlock` clears an account's failed sign-ins (policy `sign_in_failures`).

use crate::exit;
use crate::output::{print_json, OpsError};
use clap::{Args, Subcommand};
use keel_config::Settings;
use keel_ids::{Email, OrgId};
use keel_ratelimit::{LimitKey, Policy, Quota, SharedLimiter};
use keel_storage::{connect, ConnectMode};
use keel_tenancy::{Role, Tenancy, TenancyError};
use std::io::Read;

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Create an org, optionally under a parent (franchise tree).
    Create {
        name: String,
        #[arg(long)]
        parent: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user with a membership (role applies to the org and its descendants).
    Create(UserCreate),
    /// Clear an account's failed sign-ins, so it can sign in again at once (the throttle keyed
    /// by its address; any address can be cleared, known or not).
    Unlock {
        /// The account's email address.
        email: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct UserCreate {
    #[arg(long)]
    email: String,
    #[arg(long)]
    org: String,
    /// owner, manager or viewer.
    #[arg(long)]
    role: String,
    /// Read the password from standard input (never from the command line, where `ps` shows it).
    #[arg(long)]
    password_stdin: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an API token for a user; it is printed once and stored only as a hash.
    Issue {
        #[arg(long)]
        user: String,
        /// Give the token the operator scope (the operator API, `/api/ops/*`); the user must be
        /// an operator (`keel-ops operator grant EMAIL`). Tokens issued without it never carry it.
        #[arg(long)]
        operator: bool,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id; it stops working at once.
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

fn ops_err(e: TenancyError) -> OpsError {
    match e {
        TenancyError::Storage(s) => s.into(),
        TenancyError::Invalid { field, message } => OpsError::usage(format!("{field}: {message}")),
        other => OpsError::failed(other.to_string()),
    }
}

async fn tenancy(s: &Settings) -> Result<Tenancy, OpsError> {
    Ok(Tenancy::new(connect(&s.database, ConnectMode::Eager).await?))
}

fn org_id(raw: &str, flag: &str) -> Result<OrgId, OpsError> {
    OrgId::parse(raw).map_err(|e| OpsError::usage(format!("{flag}: {e}")))
}

pub(crate) async fn org(s: &Settings, cmd: OrgCommand) -> Result<u8, OpsError> {
    let OrgCommand::Create { name, parent, json } = cmd;
    let parent = parent.as_deref().map(|p| org_id(p, "--parent")).transpose()?;
    let org = tenancy(s).await?.create_org(&name, parent).await.map_err(ops_err)?;
    if json {
        print_json(&serde_json::json!({"id": org.id, "name": org.name, "parent_id": org.parent_id}));
    } else {
        println!("created org {} ({})", org.id, org.name);
    }
    Ok(exit::OK)
}

pub(crate) async fn user(s: &Settings, cmd: UserCommand) -> Result<u8, OpsError> {
    match cmd {
        UserCommand::Create(a) => create_user(s, a).await,
        UserCommand::Unlock { email, json } => unlock(s, &email, json).await,
    }
}

/// The name of keel-api's failed-sign-in policy (its rows in `keel_rate_limits`).
pub const SIGN_IN_FAILURES_POLICY: &str = "sign_in_failures";

async fn unlock(s: &Settings, raw: &str, json: bool) -> Result<u8, OpsError> {
    let email = Email::parse(raw).map_err(|e| OpsError::usage(format!("EMAIL: {e}")))?;
    let db = connect(&s.database, ConnectMode::Eager).await?;
    // Only the policy's name matters to a clear, so any quota serves. keel-ops cannot depend on
    // keel-api, where the policy is defined; a keel-api test holds the two names equal.
    const ANY: Quota = Quota::from_static(1, std::time::Duration::from_secs(1), 1);
    let throttle = SharedLimiter::new(db, &Policy::new(SIGN_IN_FAILURES_POLICY, ANY));
    let cleared = throttle
        .clear(&LimitKey::email(email.as_str()))
        .await
        .map_err(|e| OpsError::unavailable(format!("the sign-in throttle could not be cleared: {e}")))?;
    // The address is printed masked (`Email`'s Display): CLI output ends up in logs and tickets.
    if json {
        print_json(&serde_json::json!({"email": email.to_string(), "cleared": cleared}));
    } else if cleared {
        println!("cleared the failed sign-ins of {email}; it can sign in again now");
    } else {
        println!("{email} had no failed sign-ins recorded; nothing to clear");
    }
    Ok(exit::OK)
}

async fn create_user(s: &Settings, a: UserCreate) -> Result<u8, OpsError> {
    let email = Email::parse(&a.email).map_err(|e| OpsError::usage(format!("--email: {e}")))?;
    let org = org_id(&a.org, "--org")?;
    let role: Role = a.role.parse().map_err(|e: String| OpsError::usage(format!("--role: {e}")))?;
    let password = if a.password_stdin {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).map_err(|e| OpsError::usage(format!("--password-stdin: {e}")))?;
        Some(buf.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        None
    };
    let t = tenancy(s).await?;
    if t.org(org).await.map_err(ops_err)?.is_none() {
        return Err(OpsError::usage(format!("--org: no org {org}; create it with `keel-ops org create NAME`")));
    }
    // The policy is checked before anything is written, so a refused password creates nothing;
    // the message names the flag the password came through rather than the library's field.
    let id = t.create_user(&email, password.as_deref()).await.map_err(|e| match e {
        TenancyError::Invalid { field: "password", message } => {
            OpsError::usage(format!("--password-stdin: the password {message}; no user was created"))
        }
        other => ops_err(other),
    })?;
    t.add_membership(id, org, role).await.map_err(ops_err)?;
    if a.json {
        print_json(&serde_json::json!({"id": id, "email": email.as_str(), "org_id": org, "role": role.as_str()}));
    } else {
        println!("created user {id} ({}) as {role} of org {org}", email.as_str());
    }
    Ok(exit::OK)
}

pub(crate) async fn token(s: &Settings, cmd: TokenCommand) -> Result<u8, OpsError> {
    let t = tenancy(s).await?;
    match cmd {
        TokenCommand::Issue { user, operator, json } => {
            let email = Email::parse(&user).map_err(|e| OpsError::usage(format!("--user: {e}")))?;
            let u = user_by_email(&t, &email, "--user").await?;
            let tok = if operator {
                t.issue_operator_token(u.id).await.map_err(|e| match e {
                    TenancyError::Invalid { field: "user", message } => OpsError::usage(format!("--user: {message}")),
                    other => ops_err(other),
                })?
            } else {
                t.issue_token(u.id).await.map_err(ops_err)?
            };
            let scope = if operator { "operator" } else { "org" };
            if json {
                print_json(&serde_json::json!({"id": tok.id, "token": tok.token, "user_id": u.id, "scope": scope}));
            } else {
                println!("issued {scope}-scoped token {} for {} (shown once; store it now):", tok.id, email.as_str());
                println!("{}", tok.token);
            }
        }
        TokenCommand::Revoke { id, json } => {
            let id = uuid::Uuid::parse_str(&id).map_err(|_| OpsError::usage("ID must be the token's UUID"))?;
            let found = t.revoke_token(id, chrono::Utc::now()).await.map_err(ops_err)?;
            if !found {
                return Err(OpsError::failed(format!("no token {id}")));
            }
            if json {
                print_json(&serde_json::json!({"id": id, "revoked": true}));
            } else {
                println!("revoked token {id}");
            }
        }
    }
    Ok(exit::OK)
}

async fn user_by_email(t: &Tenancy, email: &Email, flag: &str) -> Result<keel_tenancy::UserRecord, OpsError> {
    t.user_by_email(email)
        .await
        .map_err(ops_err)?
        .ok_or_else(|| OpsError::usage(format!("{flag}: no user {email}; create it with `keel-ops user create`")))
}

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Make a user a platform operator (the console and `/api/ops/*`); grants no org role.
    Grant {
        /// The user's email address.
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Take the operator role away; the user's operator tokens stop working for `/api/ops/*` at once.
    Revoke {
        /// The user's email address.
        email: String,
        #[arg(long)]
        json: bool,
    },
    /// Every operator, oldest grant first (addresses masked).
    List {
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn operator(s: &Settings, cmd: OperatorCommand) -> Result<u8, OpsError> {
    let t = tenancy(s).await?;
    match cmd {
        OperatorCommand::Grant { email, json } => {
            let email = Email::parse(&email).map_err(|e| OpsError::usage(format!("EMAIL: {e}")))?;
            let u = user_by_email(&t, &email, "EMAIL").await?;
            let granted = t.grant_operator(u.id, None, chrono::Utc::now()).await.map_err(ops_err)?;
            if json {
                print_json(&serde_json::json!({"user_id": u.id, "email": email.to_string(), "granted": granted}));
            } else if granted {
                println!("{email} is now an operator");
            } else {
                println!("{email} already was an operator; nothing changed");
            }
        }
        OperatorCommand::Revoke { email, json } => {
            let email = Email::parse(&email).map_err(|e| OpsError::usage(format!("EMAIL: {e}")))?;
            let u = user_by_email(&t, &email, "EMAIL").await?;
            let revoked = t.revoke_operator(u.id).await.map_err(ops_err)?;
            if json {
                print_json(&serde_json::json!({"user_id": u.id, "email": email.to_string(), "revoked": revoked}));
            } else if revoked {
                println!("{email} is no longer an operator");
            } else {
                println!("{email} was not an operator; nothing changed");
            }
        }
        OperatorCommand::List { json } => {
            let list = t.operators().await.map_err(ops_err)?;
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|g| {
                        serde_json::json!({
                            "user_id": g.user_id,
                            "email": g.email.to_string(),
                            "granted_at": g.granted_at,
                            "granted_by": g.granted_by,
                        })
                    })
                    .collect();
                print_json(&serde_json::Value::Array(rows));
            } else if list.is_empty() {
                println!("no operators; grant one with `keel-ops operator grant EMAIL`");
            } else {
                let mut tb = crate::table::new(&["user", "email", "granted at", "granted by"], &[]);
                for g in &list {
                    tb.add_row([
                        g.user_id.to_string(),
                        g.email.to_string(),
                        g.granted_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        g.granted_by.map(|b| b.to_string()).unwrap_or_else(|| "keel-ops".into()),
                    ]);
                }
                crate::table::print(&tb);
            }
        }
    }
    Ok(exit::OK)
}
