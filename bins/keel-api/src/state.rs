//! The state every handler shares.

use crate::Config;
use keel_health::{DatabaseCheck, HealthService};
use keel_storage::Db;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub health: HealthService,
}

impl AppState {
    pub fn new(db: Db, config: Config) -> Self {
        let health = HealthService::builder(config.health)
            .check(DatabaseCheck::new(db.clone()))
            .build()
            // The registry only rejects duplicate or reserved names, which are fixed here.
            .unwrap_or_else(|e| unreachable!("health registry is static: {e}"));
        Self { db, config: Arc::new(config), health }
    }
}
