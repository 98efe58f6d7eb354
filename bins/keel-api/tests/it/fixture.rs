//! A small tenant world: a franchise parent with a child org, an unrelated org, and users.

use keel_ids::{Email, OrgId, UserId};
use keel_tenancy::{Role, Tenancy};
use keel_testkit::TestDb;

pub(crate) const PASSWORD: &str = "correct horse battery";

pub(crate) struct World {
    pub parent: OrgId,
    pub child: OrgId,
    pub other: OrgId,
    /// Owner of `parent` (and so of `child`); signs in with a password.
    pub owner: UserId,
    pub owner_email: &'static str,
    /// Viewer in `child` only.
    pub viewer_token: String,
    /// Owner of `other`, via an API token.
    pub other_token: String,
    pub owner_token: String,
    pub owner_token_id: uuid::Uuid,
}

pub(crate) async fn world(t: &TestDb) -> World {
    let tn = Tenancy::new(t.db.clone());
    let parent = tn.create_org("HQ", None).await.unwrap().id;
    let child = tn.create_org("Branch", Some(parent)).await.unwrap().id;
    let other = tn.create_org("Elsewhere", None).await.unwrap().id;
    let owner = tn.create_user(&Email::parse("owner@example.com").unwrap(), Some(PASSWORD)).await.unwrap();
    tn.add_membership(owner, parent, Role::Owner).await.unwrap();
    let viewer = tn.create_user(&Email::parse("viewer@example.com").unwrap(), None).await.unwrap();
    tn.add_membership(viewer, child, Role::Viewer).await.unwrap();
    let stranger = tn.create_user(&Email::parse("stranger@example.com").unwrap(), None).await.unwrap();
    tn.add_membership(stranger, other, Role::Owner).await.unwrap();
    let owner_tok = tn.issue_token(owner).await.unwrap();
    World {
        parent,
        child,
        other,
        owner,
        owner_email: "owner@example.com",
        viewer_token: tn.issue_token(viewer).await.unwrap().token,
        other_token: tn.issue_token(stranger).await.unwrap().token,
        owner_token: owner_tok.token,
        owner_token_id: owner_tok.id,
    }
}

pub(crate) fn invoice(customer: &str) -> serde_json::Value {
    serde_json::json!({
        "customer_name": customer,
        "currency": "USD",
        "line_items": [{"description": "Window cleaning", "quantity": 2, "unit_amount_minor": 12550}]
    })
}
