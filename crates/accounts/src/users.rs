//! Sign-up, email verification, sign-in and out, password change and reset, and operators.

use chrono::Utc;
use uuid::Uuid;

use crate::error::{AccountsError, Result};
use crate::sessions::{new_token, token_hash, Session, Subject};
use crate::types::{Email, Password, Role};
use crate::{mail, password, Accounts, AuditCtx, Change};

/// Paths of the pages the emailed links open (the dashboard serves them; each page posts the
/// token to the matching API route).
pub const VERIFY_PATH: &str = "/verify-email";
pub const RESET_PATH: &str = "/reset-password";
pub const INVITE_PATH: &str = "/invitations/accept";
pub const SIGN_IN_PATH: &str = "/sign-in";
pub const FORGOT_PATH: &str = "/forgot-password";

const VERIFY_TTL: chrono::Duration = chrono::Duration::hours(24);
const RESET_TTL: chrono::Duration = chrono::Duration::hours(1);

/// A signed-in user, after the password checked out.
pub struct SignedIn {
    pub cookie: String,
    pub session: Session,
    pub user_id: Uuid,
}

fn personal_name(email: &Email) -> String {
    email.as_str().chars().take(200).collect()
}

impl Accounts {
    /// Creates the user and their personal account (they own it) and emails a verification
    /// link. An address that is taken gets an email saying so, and the caller the same answer
    /// as for a new one: sign-up does not reveal who has an account.
    pub async fn sign_up(&self, email: &Email, password: &Password, ip: &str) -> Result<()> {
        self.throttle(&self.buckets("signup", ip, Some(email)))
            .await?;
        let hash = password::hash(password).await?;
        let mut tx = self.pg.begin().await?;
        let user_id = Uuid::now_v7();
        let Some(user) =
            infron_store::users::insert_user(&mut tx, user_id, email.as_str(), &hash).await?
        else {
            drop(tx);
            let m = mail::already_registered(
                &format!(
                    "{}{SIGN_IN_PATH}",
                    self.config.public_url.trim_end_matches('/')
                ),
                &format!(
                    "{}{FORGOT_PATH}",
                    self.config.public_url.trim_end_matches('/')
                ),
            );
            self.send_quietly(email, m).await;
            return Ok(());
        };
        let account_id = Uuid::now_v7();
        infron_store::accounts::create_in(
            &mut tx,
            account_id,
            &personal_name(email),
            Some(user.id),
        )
        .await?;
        infron_store::members::insert(&mut tx, account_id, user.id, Role::Owner.as_str()).await?;
        tx.commit().await?;
        self.record(
            &AuditCtx {
                actor_kind: "user",
                user_id: Some(user.id),
                key_id: None,
                label: email.to_string(),
                ip: Some(ip.to_string()),
                user_agent: None,
            },
            Change {
                account_id: Some(account_id),
                action: "account.create",
                target_kind: "account",
                target_id: account_id.to_string(),
                details: serde_json::json!({ "personal": true }),
            },
        )
        .await;
        self.send_verification(user.id, email).await
    }

    async fn send_verification(&self, user_id: Uuid, email: &Email) -> Result<()> {
        let token = new_token();
        infron_store::users::insert_token(
            &self.pg,
            &token_hash(&token),
            user_id,
            "verify_email",
            Utc::now() + VERIFY_TTL,
        )
        .await?;
        let link = self.config.link(VERIFY_PATH, &token);
        self.mailer.send(email, mail::verify_email(&link)).await
    }

    /// Sends again to an unverified address; the same answer whatever the address.
    pub async fn resend_verification(&self, email: &Email, ip: &str) -> Result<()> {
        self.throttle(&self.buckets("reset", ip, Some(email)))
            .await?;
        if let Some(u) = infron_store::users::user_by_email(&self.pg, email.as_str()).await? {
            if u.email_verified_at.is_none() {
                self.send_verification(u.id, email).await?;
            }
        }
        Ok(())
    }

    /// Mail that must not reveal anything to the caller by failing.
    async fn send_quietly(&self, to: &Email, m: mail::Mail) {
        if let Err(e) = self.mailer.send(to, m).await {
            tracing::warn!(error = %e, "email not sent");
        }
    }

    pub async fn verify_email(&self, token: &str) -> Result<Uuid> {
        let user = infron_store::users::consume_token(&self.pg, &token_hash(token), "verify_email")
            .await?
            .ok_or_else(|| {
                AccountsError::invalid("token", "this link is invalid, used or expired")
            })?;
        infron_store::users::mark_verified(&self.pg, user).await?;
        Ok(user)
    }

    /// Checks the password (a dummy check for unknown addresses, so timing tells nothing) and
    /// starts a new session in the user's first account (their personal one when they have it).
    pub async fn sign_in(&self, email: &Email, password: &Password, ip: &str) -> Result<SignedIn> {
        self.throttle(&self.buckets("signin", ip, Some(email)))
            .await?;
        let user = infron_store::users::user_by_email(&self.pg, email.as_str()).await?;
        let ok =
            password::verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
        let user = match user {
            Some(u) if ok => u,
            _ => {
                return Err(AccountsError::Unauthenticated(
                    "invalid email or password".into(),
                ))
            }
        };
        if user.email_verified_at.is_none() {
            return Err(AccountsError::forbidden(
                "confirm your email address first (see the link we sent you)",
            ));
        }
        let first = infron_store::members::of_user(&self.pg, user.id)
            .await?
            .first()
            .map(|m| m.account_id);
        let (cookie, session) = self.sessions.start(Subject::User(user.id), first).await?;
        Ok(SignedIn {
            cookie,
            session,
            user_id: user.id,
        })
    }

    /// Changes the password after checking the current one; every other session ends.
    pub async fn change_password(
        &self,
        session: &Session,
        user_id: Uuid,
        current: &Password,
        new: &Password,
    ) -> Result<()> {
        let user = infron_store::users::user(&self.pg, user_id)
            .await?
            .ok_or(AccountsError::NotFound("user"))?;
        if !password::verify(current, Some(&user.password_hash)).await? {
            return Err(AccountsError::invalid(
                "current_password",
                "the current password is not right",
            ));
        }
        let hash = password::hash(new).await?;
        infron_store::users::set_password(&self.pg, user_id, &hash).await?;
        self.sessions
            .end_all(Subject::User(user_id), Some(session))
            .await?;
        Ok(())
    }

    /// Emails a reset link if the address has an account; the same answer either way.
    pub async fn forgot_password(&self, email: &Email, ip: &str) -> Result<()> {
        self.throttle(&self.buckets("reset", ip, Some(email)))
            .await?;
        if let Some(u) = infron_store::users::user_by_email(&self.pg, email.as_str()).await? {
            let token = new_token();
            infron_store::users::insert_token(
                &self.pg,
                &token_hash(&token),
                u.id,
                "reset_password",
                Utc::now() + RESET_TTL,
            )
            .await?;
            let link = self.config.link(RESET_PATH, &token);
            self.send_quietly(email, mail::reset_password(&link)).await;
        }
        Ok(())
    }

    /// Sets a new password with an emailed token; every session of the user ends. The address
    /// counts as verified (the link reached it).
    pub async fn reset_password(&self, token: &str, new: &Password, ip: &str) -> Result<Uuid> {
        self.throttle(&self.buckets("reset", ip, None)).await?;
        let user =
            infron_store::users::consume_token(&self.pg, &token_hash(token), "reset_password")
                .await?
                .ok_or_else(|| {
                    AccountsError::invalid("token", "this link is invalid, used or expired")
                })?;
        let hash = password::hash(new).await?;
        infron_store::users::set_password(&self.pg, user, &hash).await?;
        infron_store::users::mark_verified(&self.pg, user).await?;
        self.sessions.end_all(Subject::User(user), None).await?;
        Ok(user)
    }

    /// Creates an operator (the CLI). Refuses an address already used by an operator.
    pub async fn create_operator(&self, email: &Email, password: &Password) -> Result<Uuid> {
        let hash = password::hash(password).await?;
        let row =
            infron_store::users::insert_operator(&self.pg, Uuid::now_v7(), email.as_str(), &hash)
                .await?
                .ok_or_else(|| {
                    AccountsError::Conflict(format!("an operator with the email {email} exists"))
                })?;
        Ok(row.id)
    }

    pub async fn operator_sign_in(
        &self,
        email: &Email,
        password: &Password,
        ip: &str,
    ) -> Result<(String, Session)> {
        self.throttle(&self.buckets("operator-signin", ip, Some(email)))
            .await?;
        let op = infron_store::users::operator_by_email(&self.pg, email.as_str()).await?;
        let ok = password::verify(password, op.as_ref().map(|o| o.password_hash.as_str())).await?;
        match op {
            Some(o) if ok && !o.disabled => {
                Ok(self.sessions.start(Subject::Operator(o.id), None).await?)
            }
            _ => Err(AccountsError::Unauthenticated(
                "invalid email or password".into(),
            )),
        }
    }
}
