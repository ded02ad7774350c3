//! Recording changes in the audit log.

use serde_json::Value;
use uuid::Uuid;

use crate::policy::Actor;
use crate::Accounts;

/// Who made a change and from where.
#[derive(Debug, Clone)]
pub struct AuditCtx {
    /// `user`, `api_key`, `operator`, `cli` or `system`.
    pub actor_kind: &'static str,
    pub user_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    /// Something a person recognises: an email or a key's hint.
    pub label: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditCtx {
    pub fn for_actor(actor: &Actor, label: String, ip: Option<String>, ua: Option<String>) -> Self {
        let (kind, key_id) = match actor {
            Actor::User { .. } => ("user", None),
            Actor::ManagementKey { key_id, .. } | Actor::InferenceKey { key_id, .. } => {
                ("api_key", Some(*key_id))
            }
        };
        AuditCtx {
            actor_kind: kind,
            user_id: actor.user_id(),
            key_id,
            label,
            ip,
            user_agent: ua,
        }
    }

    pub fn cli() -> Self {
        AuditCtx {
            actor_kind: "cli",
            user_id: None,
            key_id: None,
            label: "infron CLI".into(),
            ip: None,
            user_agent: None,
        }
    }
}

/// What changed.
#[derive(Debug, Clone)]
pub struct Change {
    pub account_id: Option<Uuid>,
    /// `key.create`, `member.role_change`, `account.freeze`, ...
    pub action: &'static str,
    pub target_kind: &'static str,
    pub target_id: String,
    pub details: Value,
}

impl Accounts {
    /// Appends an entry. Called after the change committed: a failure here is logged loudly
    /// rather than reported as a failure of a change that did happen.
    pub async fn record(&self, ctx: &AuditCtx, change: Change) {
        record_with(&self.pg, ctx, change).await;
    }
}

/// Records with a bare pool (the CLI has no `Accounts`).
pub async fn record_with(pg: &infron_store::PgPool, ctx: &AuditCtx, change: Change) {
    let row = infron_store::audit::AuditRow {
        id: Uuid::now_v7(),
        at: chrono::Utc::now(),
        account_id: change.account_id,
        actor_kind: ctx.actor_kind.to_string(),
        actor_user_id: ctx.user_id,
        actor_key_id: ctx.key_id,
        actor_label: ctx.label.clone(),
        action: change.action.to_string(),
        target_kind: change.target_kind.to_string(),
        target_id: change.target_id,
        details: change.details,
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.clone(),
    };
    if let Err(e) = infron_store::audit::insert(pg, &row).await {
        tracing::error!(error = %e, action = %row.action, account = ?row.account_id, "could not write the audit log");
    }
}
