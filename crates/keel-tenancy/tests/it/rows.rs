//! Row mapping is strict on both backends: a stored value this build does not recognise (a role
//! from a newer release, a malformed UUID, an unrepresentable timestamp, an address not in its
//! normalised form) is an error naming the column, never a default.

use super::email;
use chrono::Utc;
use keel_storage::Db;
use keel_tenancy::{Role, Tenancy, TenancyError};
use keel_testkit::{backend_tests, TestDb};
use std::time::Duration;

backend_tests!(an_unknown_role_is_an_error_not_a_default, malformed_columns_are_errors, users_are_found_by_id);

/// The error names the column the value came from.
fn names_column(e: &TenancyError, column: &str) -> bool {
    matches!(e, TenancyError::Storage(keel_storage::StorageError::Query(sqlx::Error::ColumnDecode { index, .. })) if index == column)
}

/// Runs `sql` with the table's CHECK constraints out of the way, as a newer release (or a
/// hand edit) could have left the row.
async fn write_unchecked(db: &Db, pg_sql: &str, sqlite_sql: &str) {
    match db {
        Db::Postgres(p) => {
            sqlx::query("ALTER TABLE keel_memberships DROP CONSTRAINT IF EXISTS keel_memberships_role_check")
                .execute(p)
                .await
                .unwrap();
            sqlx::query(pg_sql).execute(p).await.unwrap();
        }
        Db::Sqlite(p) => {
            // One connection: the pragma is per connection.
            let mut c = p.acquire().await.unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = ON").execute(&mut *c).await.unwrap();
            sqlx::query(sqlite_sql).execute(&mut *c).await.unwrap();
            sqlx::query("PRAGMA ignore_check_constraints = OFF").execute(&mut *c).await.unwrap();
        }
    }
}

async fn an_unknown_role_is_an_error_not_a_default(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let org = tn.create_org("HQ", None).await.unwrap();
    let u = tn.create_user(&email("role@example.com"), None).await.unwrap();
    tn.add_membership(u, org.id, Role::Viewer).await.unwrap();
    let set = format!("UPDATE keel_memberships SET role = 'auditor' WHERE user_id = '{u}'");
    write_unchecked(&t.db, &set, &set).await;
    let e = tn.memberships(u).await.unwrap_err();
    assert!(names_column(&e, "keel_memberships.role"), "{e:?}");
    assert!(e.to_string().contains("auditor"), "the message says what was found: {e}");
    // Every path that reads the role refuses alike: no request is authorised with a guess.
    assert!(names_column(&tn.role_in(u, org.id).await.unwrap_err(), "keel_memberships.role"));
    // A stored spelling that typed input would forgive is still not a stored role.
    let set = format!("UPDATE keel_memberships SET role = 'Owner' WHERE user_id = '{u}'");
    write_unchecked(&t.db, &set, &set).await;
    assert!(names_column(&tn.memberships(u).await.unwrap_err(), "keel_memberships.role"));
}

async fn malformed_columns_are_errors(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let e = email("rows@example.com");
    let u = tn.create_user(&e, None).await.unwrap();
    let now = Utc::now();
    let s = tn.create_session(u, None, Duration::from_secs(3600), now).await.unwrap();
    let resolve = || tn.resolve_session(&s.token, now, Duration::from_secs(3600), Duration::from_secs(60));
    match &t.db {
        // PostgreSQL's uuid and timestamptz columns cannot hold a malformed id or date at all;
        // an address out of normalised form is the case both backends can store.
        Db::Postgres(p) => {
            sqlx::query("ALTER TABLE keel_users DROP CONSTRAINT IF EXISTS keel_users_email_check")
                .execute(p)
                .await
                .unwrap();
            sqlx::query("UPDATE keel_users SET email = 'Rows@Example.com'").execute(p).await.unwrap();
        }
        Db::Sqlite(p) => {
            // A timestamp beyond what a date can hold.
            sqlx::query("UPDATE keel_sessions SET expires_at = 9223372036854775807").execute(p).await.unwrap();
            assert!(names_column(&resolve().await.unwrap_err(), "keel_sessions.expires_at"));
            // A user id that is not a UUID (foreign keys and checks off for the edit, as a
            // hand edit could leave it; both pragmas are per connection).
            let mut c = p.acquire().await.unwrap();
            sqlx::query("PRAGMA foreign_keys = OFF").execute(&mut *c).await.unwrap();
            sqlx::query("UPDATE keel_sessions SET user_id = 'not-a-uuid', expires_at = ?")
                .bind((now + chrono::Duration::hours(1)).timestamp_millis())
                .execute(&mut *c)
                .await
                .unwrap();
            sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *c).await.unwrap();
            drop(c);
            assert!(names_column(&resolve().await.unwrap_err(), "keel_sessions.user_id"));
            write_unchecked(&t.db, "", "UPDATE keel_users SET email = 'Rows@Example.com'").await;
        }
    }
    assert!(tn.user_by_email(&e).await.unwrap().is_none(), "no longer matches the normalised form");
    assert!(names_column(&tn.user(u).await.unwrap_err(), "keel_users.email"));
}

async fn users_are_found_by_id(t: TestDb) {
    let tn = Tenancy::new(t.db.clone());
    let e = email("Found@Example.com");
    let u = tn.create_user(&e, None).await.unwrap();
    let found = tn.user(u).await.unwrap().unwrap();
    assert_eq!((found.id, found.email.as_str()), (u, "found@example.com"));
    assert!(found.password_hash.is_none());
    assert!(tn.user(keel_ids::UserId::generate()).await.unwrap().is_none());
}
