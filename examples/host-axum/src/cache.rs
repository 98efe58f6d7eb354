//! Step 3, the cached read: the note list in a keel-orgcache bucket of our own, tagged `notes`,
//! dropped by that tag whenever a note is written or processed.

use crate::notes::{Note, Notes};
use keel_ids::OrgId;
use keel_orgcache::{Bucket, BucketConfig, CacheConfig, Cached, LoadError, OrgCache, StatsSnapshot, Tag};
use std::time::Duration;

/// The bucket: a name, a TTL and a capacity, all ours.
pub const NOTES: Bucket = Bucket::new("notes");
/// A backstop only: every write invalidates, so an entry is never stale because of its age.
pub const NOTES_TTL: Duration = Duration::from_secs(300);
/// 4 MiB of notes per process; past that moka evicts the least useful entries.
pub const NOTES_CAPACITY: u64 = 4 << 20;

/// This service has one tenant. keel-orgcache scopes every entry to an org so that a
/// multi-tenant service can never serve one org another's data; such a service passes the
/// caller's org where this one passes its constant.
const TENANT: &str = "00000000-0000-0000-0000-000000000001";

/// The cached note list.
#[derive(Debug, Clone)]
pub struct NotesCache {
    cache: OrgCache,
    tenant: OrgId,
    tag: Tag,
}

impl Default for NotesCache {
    fn default() -> Self {
        Self::new()
    }
}

impl NotesCache {
    /// An empty cache with the `notes` bucket.
    pub fn new() -> NotesCache {
        let config = CacheConfig::new().with_bucket(NOTES, BucketConfig::new(NOTES_TTL, NOTES_CAPACITY));
        NotesCache {
            cache: OrgCache::new(&config),
            tenant: OrgId::parse(TENANT).expect("TENANT is a UUID"),
            tag: Tag::new("notes").expect("`notes` is a valid tag"),
        }
    }

    /// The list, from the cache or (once, however many ask at the same time) from the database.
    /// [`Cached::was_hit`] tells which.
    pub async fn list(&self, notes: &Notes) -> Result<Cached<Vec<Note>>, LoadError<sqlx::Error>> {
        let tags = std::slice::from_ref(&self.tag);
        self.cache.get_or_load(self.tenant, NOTES, "all", tags, || notes.list()).await
    }

    /// Drops every entry tagged `notes`. Call it after the write commits: a load that started
    /// before is then never stored, and one that starts after sees the write.
    pub async fn invalidate(&self) {
        self.cache.invalidate_tag(self.tenant, &self.tag).await;
    }

    /// Hits, misses, loads and evictions, for `/metrics`.
    pub fn stats(&self) -> StatsSnapshot {
        self.cache.stats()
    }
}
