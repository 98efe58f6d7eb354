//! Invalidation: by key, by tag (through the reverse index, no scan), by org, and the full
//! resync. Local removal happens first; then the change is published to other instances.

use crate::bucket::Bucket;
use crate::cache::{BucketCore, OrgCache};
use crate::key::{KeyRef, Tag};
use crate::message::Scope;
use keel_ids::OrgId;
use std::sync::Arc;

impl OrgCache {
    /// Removes one key of `org`. Loads of this org and bucket already running will not store
    /// their result. Returns how many entries were removed here (0 or 1).
    pub async fn invalidate_key(&self, org: OrgId, bucket: Bucket, key: &str) -> usize {
        // A bucket this cache does not have holds nothing here, and nothing to tell the others.
        let Some(core) = self.core(bucket) else { return 0 };
        let n = apply_in(core, org, &Scope::Key(key.to_owned())).await;
        self.publish(org, Some(bucket), Scope::Key(key.to_owned())).await;
        n
    }

    /// Removes exactly the entries of `org` tagged `tag`, in every bucket. This is what a write
    /// to reference or business data calls.
    pub async fn invalidate_tag(&self, org: OrgId, tag: &Tag) -> usize {
        let n = self.apply_local(org, None, &Scope::Tag(tag.clone())).await;
        self.publish(org, None, Scope::Tag(tag.clone())).await;
        n
    }

    /// Removes the entries of `org` tagged `tag` in one bucket.
    pub async fn invalidate_bucket_tag(&self, org: OrgId, bucket: Bucket, tag: &Tag) -> usize {
        let Some(core) = self.core(bucket) else { return 0 };
        let n = apply_in(core, org, &Scope::Tag(tag.clone())).await;
        self.publish(org, Some(bucket), Scope::Tag(tag.clone())).await;
        n
    }

    /// Removes every entry of `org`, in one bucket or (`None`) in all of them.
    pub async fn flush_org(&self, org: OrgId, bucket: Option<Bucket>) -> usize {
        if bucket.is_some_and(|b| self.core(b).is_none()) {
            return 0;
        }
        let n = self.apply_local(org, bucket, &Scope::All).await;
        self.publish(org, bucket, Scope::All).await;
        n
    }

    /// Flushes every org in every bucket, locally only. This is the one operation spanning
    /// orgs: an invalidation bus calls it after a reconnect, a lag or an unreadable message,
    /// when it cannot know what it missed. It removes data and never reveals any.
    pub async fn resync(&self) {
        self.inner.bus_counters.resyncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for b in &self.inner.buckets {
            let orgs: Vec<OrgId> = b.shared.orgs.iter().map(|e| *e.key()).collect();
            for org in orgs {
                apply_in(b, org, &Scope::All).await;
            }
        }
    }

    /// Applies an invalidation here without publishing it (used for received messages).
    pub(crate) async fn apply_local(&self, org: OrgId, bucket: Option<Bucket>, scope: &Scope) -> usize {
        let mut n = 0;
        for b in self.inner.buckets.iter().filter(|b| bucket.is_none_or(|x| x == b.bucket)) {
            n += apply_in(b, org, scope).await;
        }
        n
    }
}

/// Bumps the org's generation and removes the entries in `scope`, all under the gate so that
/// no fill can check the old generation and insert in between.
async fn apply_in(b: &BucketCore, org: OrgId, scope: &Scope) -> usize {
    // No state means nothing was ever stored or loaded for this org here; a load starting now
    // reads the generation after this point and is not stale.
    let Some(state) = b.shared.existing_org(org) else { return 0 };
    let _gate = state.gate.lock().await;
    state.bump();
    let keys: Vec<Arc<str>> = match scope {
        Scope::Key(k) => {
            state.index().unregister(k);
            return usize::from(b.cache.remove(&KeyRef { org, key: k }).await.is_some());
        }
        Scope::Tag(t) => state.index().take_tag(t),
        Scope::All => state.index().take_all(),
    };
    for k in &keys {
        b.cache.invalidate(&KeyRef { org, key: k }).await;
    }
    keys.len()
}
