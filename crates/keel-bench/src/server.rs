//! A real keel-api for the server-backed families: `keel_api::serve` on a random loopback
//! port over a given database, plus one tenant (an org, an owner with a password, an API token).
#![allow(dead_code)] // each family uses a different subset

use keel_api::{AppState, Config};
use keel_ids::{Email, OrgId, UserId};
use keel_storage::Db;
use keel_tenancy::{Role, Tenancy};
use std::net::SocketAddr;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub(crate) const PASSWORD: &str = "bench password, long enough";
pub(crate) const EMAIL: &str = "owner@bench.example";

pub(crate) struct BenchServer {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), String>>,
}

/// Loads keel-api's configuration from `env` alone (the process environment is not read, so a
/// developer's shell cannot change a benchmark), builds the state over `db` and serves it.
pub(crate) async fn start(db: Db, env: &[(&str, &str)]) -> Result<BenchServer, String> {
    let state = state(db, env)?;
    start_state(state).await
}

/// The state `start` would serve, for a family that wants to adjust it first.
pub(crate) fn state(db: Db, env: &[(&str, &str)]) -> Result<AppState, String> {
    let src = keel_config::MapSource(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    let config = Config::load(&src).map_err(|p| format!("keel-api configuration: {p}"))?;
    Ok(AppState::new(db, config))
}

pub(crate) async fn start_state(state: AppState) -> Result<BenchServer, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("bind: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let shutdown = CancellationToken::new();
    let serve = keel_api::serve(listener, state.clone(), shutdown.clone());
    let task = tokio::spawn(async move { serve.await.map_err(|e| format!("{e:#}")) });
    Ok(BenchServer { addr, state, shutdown, task })
}

impl BenchServer {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops accepting, drains, and waits for `serve` to return (which flushes the route
    /// telemetry buffer).
    pub(crate) async fn stop(self) -> Result<(), String> {
        self.shutdown.cancel();
        self.task.await.map_err(|e| format!("server task: {e}"))?
    }
}

/// One org with an owner who has a password and an API token.
pub(crate) struct Tenant {
    pub org: OrgId,
    pub user: UserId,
    pub token: String,
}

pub(crate) async fn tenant(db: &Db) -> Result<Tenant, String> {
    let tn = Tenancy::new(db.clone());
    let org = tn.create_org("Bench Org", None).await.map_err(|e| format!("create org: {e}"))?.id;
    let email = Email::parse(EMAIL).map_err(|e| e.to_string())?;
    let user = tn.create_user(&email, Some(PASSWORD)).await.map_err(|e| format!("create user: {e}"))?;
    tn.add_membership(user, org, Role::Owner).await.map_err(|e| format!("membership: {e}"))?;
    let token = tn.issue_token(user).await.map_err(|e| format!("token: {e}"))?.token;
    Ok(Tenant { org, user, token })
}

/// A keep-alive HTTP client with no proxy lookups, shared by a family's load loops.
pub(crate) fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder().no_proxy().pool_max_idle_per_host(256).build().map_err(|e| e.to_string())
}
