//! keel-orgcache: see the crate description; filled in by its issue.
