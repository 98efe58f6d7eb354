//! Billing's own schema (invoices, counters, idempotency keys, payments), installed by [`migrate`].

use keel_storage::{Db, Legacy, Migration, MigrationReport, Schema, StorageError};

/// Billing's schema: its migrations for both backends, recorded in `keel_billing_migrations`.
pub static SCHEMA: Schema = Schema {
    component: "billing",
    migrations: &[
        Migration {
            version: 1,
            description: "invoices",
            postgres: include_str!("../migrations/postgres/0001_invoices.sql"),
            sqlite: include_str!("../migrations/sqlite/0001_invoices.sql"),
        },
        Migration {
            version: 2,
            description: "amount bounds",
            postgres: include_str!("../migrations/postgres/0002_amount_bounds.sql"),
            sqlite: include_str!("../migrations/sqlite/0002_amount_bounds.sql"),
        },
    ],
    legacy: Some(Legacy {
        requires: &[(6, "invoices")],
        also_owns: &[(8, "report keyset indexes")],
        baseline: 1,
        // A 0.1 database always ran 0008 at its last start; these make the adoption right even
        // for one that did not (both statements are no-ops otherwise).
        postgres: "DROP INDEX IF EXISTS invoices_org_created_idx;
                   CREATE INDEX IF NOT EXISTS invoices_org_created_id_idx ON invoices (org_id, created_at, id);
                   DROP INDEX IF EXISTS payments_org_paid_idx;
                   CREATE INDEX IF NOT EXISTS payments_org_paid_id_idx ON payments (org_id, paid_at, id);",
        sqlite: "DROP INDEX IF EXISTS invoices_org_created_idx;
                 CREATE INDEX IF NOT EXISTS invoices_org_created_id_idx ON invoices (org_id, created_at, id);
                 DROP INDEX IF EXISTS payments_org_paid_idx;
                 CREATE INDEX IF NOT EXISTS payments_org_paid_id_idx ON payments (org_id, paid_at, id);",
        renames: &["invoices", "invoice_counters", "idempotency_keys", "payments"],
    }),
};

/// Installs or upgrades billing's tables in `db`, after keel-tenancy's (they reference `keel_orgs`).
pub async fn migrate(db: &Db) -> Result<MigrationReport, StorageError> {
    SCHEMA.migrate(db).await
}
