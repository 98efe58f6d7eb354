//! Two caches sharing one Postgres database through LISTEN/NOTIFY.
