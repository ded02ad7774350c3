//! Invitations, roles, removal, leaving and ownership transfer. Every function takes the
//! acting `Actor`, asks the policy first, and records the change in the audit log.

use chrono::Utc;
use uuid::Uuid;

use crate::error::{AccountsError, Result};
use crate::sessions::{new_token, token_hash};
use crate::types::{Email, KeyKind, Role};
use crate::users::INVITE_PATH;
use crate::{mail, Accounts, Actor, AuditCtx, Change, MemberFacts};

const INVITE_TTL: chrono::Duration = chrono::Duration::days(7);

fn role_of(s: &str) -> Result<Role> {
    s.parse()
        .map_err(|e: String| AccountsError::Internal(format!("stored role: {e}")))
}

impl Accounts {
    /// The member `user_id` of the actor's account, or 404.
    pub async fn member(&self, actor: &Actor, user_id: Uuid) -> Result<MemberFacts> {
        let row = infron_store::members::get(&self.pg, actor.account_id(), user_id)
            .await?
            .ok_or(AccountsError::NotFound("member"))?;
        Ok(MemberFacts {
            user_id,
            role: role_of(&row.role)?,
        })
    }

    pub async fn invite(
        &self,
        actor: &Actor,
        ctx: &AuditCtx,
        email: &Email,
        role: Role,
    ) -> Result<infron_store::members::InvitationRow> {
        actor.invite(role)?;
        let account = actor.account_id();
        let members = infron_store::members::list(&self.pg, account).await?;
        if members.iter().any(|m| m.email == email.as_str()) {
            return Err(AccountsError::Conflict(format!(
                "{email} is already a member of this account"
            )));
        }
        let name = infron_store::accounts::get(&self.pg, account)
            .await?
            .map(|a| a.name)
            .unwrap_or_default();
        let token = new_token();
        let row = infron_store::members::invite(
            &self.pg,
            infron_store::members::NewInvitation {
                id: Uuid::now_v7(),
                account_id: account,
                email: email.as_str(),
                role: role.as_str(),
                token_hash: &token_hash(&token),
                invited_by: actor.user_id(),
                expires_at: Utc::now() + INVITE_TTL,
            },
        )
        .await?;
        self.record(
            ctx,
            Change {
                account_id: Some(account),
                action: "member.invite",
                target_kind: "invitation",
                target_id: row.id.to_string(),
                details: serde_json::json!({ "email": email.as_str(), "role": role }),
            },
        )
        .await;
        let link = self.config.link(INVITE_PATH, &token);
        self.mailer
            .send(
                email,
                mail::invitation(&name, role.as_str(), &ctx.label, &link),
            )
            .await?;
        Ok(row)
    }

    pub async fn revoke_invitation(&self, actor: &Actor, ctx: &AuditCtx, id: Uuid) -> Result<()> {
        // Only those who may invite see invitations at all.
        actor.read_members()?;
        actor.invite(Role::Member)?;
        let row = infron_store::members::revoke_invitation(&self.pg, actor.account_id(), id)
            .await?
            .ok_or(AccountsError::NotFound("invitation"))?;
        self.record(
            ctx,
            Change {
                account_id: Some(row.account_id),
                action: "member.invitation_revoke",
                target_kind: "invitation",
                target_id: id.to_string(),
                details: serde_json::json!({ "email": row.email }),
            },
        )
        .await;
        Ok(())
    }

    /// Accepts an invitation addressed to the signed-in user's email.
    pub async fn accept_invitation(
        &self,
        user_id: Uuid,
        ctx: &AuditCtx,
        token: &str,
    ) -> Result<infron_store::members::InvitationRow> {
        let user = infron_store::users::user(&self.pg, user_id)
            .await?
            .ok_or(AccountsError::NotFound("user"))?;
        let row = infron_store::members::accept_invitation(
            &self.pg,
            &token_hash(token),
            user_id,
            &user.email,
        )
        .await?
        .ok_or_else(|| {
            AccountsError::invalid(
                "token",
                "this invitation is invalid, used, expired, or addressed to another email",
            )
        })?;
        self.record(
            ctx,
            Change {
                account_id: Some(row.account_id),
                action: "member.join",
                target_kind: "user",
                target_id: user_id.to_string(),
                details: serde_json::json!({ "role": row.role, "invitation": row.id }),
            },
        )
        .await;
        Ok(row)
    }

    pub async fn change_role(
        &self,
        actor: &Actor,
        ctx: &AuditCtx,
        user_id: Uuid,
        new_role: Role,
    ) -> Result<()> {
        actor.read_members()?;
        let target = self.member(actor, user_id).await?;
        actor.change_role(&target, new_role)?;
        let account = actor.account_id();
        let mut tx = self.pg.begin().await?;
        infron_store::members::set_role(&mut tx, account, user_id, new_role.as_str()).await?;
        tx.commit().await?;
        // Management keys need an owner's or admin's authority: they go with it.
        if !new_role.administers() {
            infron_store::keys::disable_created_by(
                &self.pg,
                account,
                user_id,
                &[
                    KeyKind::Management.as_str(),
                    KeyKind::ManagementRead.as_str(),
                ],
            )
            .await?;
        }
        self.record(
            ctx,
            Change {
                account_id: Some(account),
                action: "member.role_change",
                target_kind: "user",
                target_id: user_id.to_string(),
                details: serde_json::json!({ "from": target.role, "to": new_role }),
            },
        )
        .await;
        Ok(())
    }

    /// Removes a member (or, with `leaving`, the actor themself); their keys are disabled.
    pub async fn remove_member(
        &self,
        actor: &Actor,
        ctx: &AuditCtx,
        user_id: Uuid,
        leaving: bool,
    ) -> Result<()> {
        let account = actor.account_id();
        let role = if leaving {
            actor.leave()?;
            None
        } else {
            actor.read_members()?;
            let target = self.member(actor, user_id).await?;
            actor.remove_member(&target)?;
            Some(target.role)
        };
        if !infron_store::members::remove(&self.pg, account, user_id).await? {
            return Err(AccountsError::NotFound("member"));
        }
        let disabled = infron_store::keys::disable_created_by(
            &self.pg,
            account,
            user_id,
            &[
                KeyKind::Inference.as_str(),
                KeyKind::Management.as_str(),
                KeyKind::ManagementRead.as_str(),
            ],
        )
        .await?;
        self.record(
            ctx,
            Change {
                account_id: Some(account),
                action: if leaving {
                    "member.leave"
                } else {
                    "member.remove"
                },
                target_kind: "user",
                target_id: user_id.to_string(),
                details: serde_json::json!({ "role": role, "keys_disabled": disabled }),
            },
        )
        .await;
        Ok(())
    }

    /// Makes `user_id` the owner; the previous owner becomes an admin.
    pub async fn transfer_ownership(
        &self,
        actor: &Actor,
        ctx: &AuditCtx,
        user_id: Uuid,
    ) -> Result<()> {
        // The role first, so the answer does not depend on whose id was sent.
        if !matches!(
            actor,
            Actor::User {
                role: Role::Owner,
                ..
            }
        ) {
            return Err(AccountsError::forbidden(
                "only the owner can transfer ownership",
            ));
        }
        let target = self.member(actor, user_id).await?;
        actor.transfer_ownership(&target)?;
        let account = actor.account_id();
        let me = actor
            .user_id()
            .ok_or_else(|| AccountsError::forbidden("only the owner can transfer ownership"))?;
        let mut tx = self.pg.begin().await?;
        infron_store::members::lock_account(&mut tx, account).await?;
        // Re-checked under the lock: the actor is still the owner.
        let still_owner: Option<String> = sqlx::query_scalar(
            "SELECT role FROM memberships WHERE account_id = $1 AND user_id = $2",
        )
        .bind(account)
        .bind(me)
        .fetch_optional(&mut *tx)
        .await?;
        if still_owner.as_deref() != Some("owner") {
            return Err(AccountsError::forbidden(
                "only the owner can transfer ownership",
            ));
        }
        infron_store::members::set_role(&mut tx, account, me, Role::Admin.as_str()).await?;
        if !infron_store::members::set_role(&mut tx, account, user_id, Role::Owner.as_str()).await?
        {
            return Err(AccountsError::NotFound("member"));
        }
        tx.commit().await?;
        self.record(
            ctx,
            Change {
                account_id: Some(account),
                action: "account.transfer",
                target_kind: "user",
                target_id: user_id.to_string(),
                details: serde_json::json!({ "from": me, "previous_role": target.role }),
            },
        )
        .await;
        Ok(())
    }

    /// Resolves a signed-in user acting in `account_id` to an `Actor`; 404 if not a member.
    pub async fn user_actor(&self, user_id: Uuid, account_id: Uuid) -> Result<Actor> {
        let (role, frozen) = infron_store::members::role_of(&self.pg, account_id, user_id)
            .await?
            .ok_or(AccountsError::NotFound("account"))?;
        Ok(Actor::User {
            user_id,
            account_id,
            role: role_of(&role)?,
            frozen,
        })
    }

    /// The role `user_id` holds in `account_id` now, if any (for keys acting for their creator).
    pub async fn role_in(&self, account_id: Uuid, user_id: Uuid) -> Result<Option<Role>> {
        match infron_store::members::role_of(&self.pg, account_id, user_id).await? {
            Some((r, _)) => Ok(Some(role_of(&r)?)),
            None => Ok(None),
        }
    }

    /// Creates another account owned by the user (a team account).
    pub async fn create_account(&self, user_id: Uuid, ctx: &AuditCtx, name: &str) -> Result<Uuid> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AccountsError::invalid(
                "name",
                "the name must be 1 to 200 characters",
            ));
        }
        let mut tx = self.pg.begin().await?;
        let id = Uuid::now_v7();
        infron_store::accounts::create_in(&mut tx, id, name, None).await?;
        infron_store::members::insert(&mut tx, id, user_id, Role::Owner.as_str()).await?;
        tx.commit().await?;
        self.record(
            ctx,
            Change {
                account_id: Some(id),
                action: "account.create",
                target_kind: "account",
                target_id: id.to_string(),
                details: serde_json::json!({ "name": name }),
            },
        )
        .await;
        Ok(id)
    }
}
