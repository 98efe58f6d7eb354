//! Every change made through the console lands in the operator activity log (keel-tenancy's
//! `keel_operator_actions`): who, what, to what, when, from which address.

use super::gate::Operator;
use crate::AppState;

/// Records one action. A failure to record is logged, not shown: the action itself already
/// happened, and refusing to say so would mislead the operator.
pub(super) async fn record(state: &AppState, op: &Operator, action: &str, target: &str, detail: serde_json::Value) {
    if let Err(e) = state
        .tenancy
        .record_operator_action(op.user_id, action, target, detail, chrono::Utc::now(), op.remote_addr.clone())
        .await
    {
        tracing::error!(error = %e, action, "console: the operator action was done but not recorded");
    }
}
