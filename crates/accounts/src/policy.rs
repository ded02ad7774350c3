//! Who may do what: the one place that answers it. Handlers build an `Actor` for the caller (a
//! session's user with their role, a management key, or an inference key) and ask; the answer
//! is typed (`Visibility` says which keys' data a read covers) or an error that is already the
//! right HTTP answer. Something the caller cannot see is `NotFound`, never `Forbidden`, so ids
//! cannot be probed; `Forbidden` is for what the caller can see but not change.

use uuid::Uuid;

use crate::error::{AccountsError, Result};
use crate::types::{KeyKind, Role};

/// The caller, as far as the rules are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in user acting in one of their accounts.
    User {
        user_id: Uuid,
        account_id: Uuid,
        role: Role,
        frozen: bool,
    },
    /// A management key (`read_only` for the `management_read` kind).
    ManagementKey {
        key_id: Uuid,
        account_id: Uuid,
        creator: Option<Uuid>,
        read_only: bool,
    },
    /// An inference key. `creator_role` is the role its creator holds now (None for keys made
    /// with the CLI, which act for the whole account).
    InferenceKey {
        key_id: Uuid,
        account_id: Uuid,
        creator: Option<Uuid>,
        creator_role: Option<Role>,
    },
}

/// Which keys' data a read covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Every key of the account.
    Account,
    /// The keys this user created (a member sees their own).
    CreatedBy(Uuid),
}

/// What the rules need to know about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFacts {
    pub kind: KeyKind,
    pub created_by: Option<Uuid>,
}

/// What the rules need to know about a member being acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberFacts {
    pub user_id: Uuid,
    pub role: Role,
}

const NEED_MANAGEMENT: &str =
    "only management keys or a signed-in member can perform this operation";
const READ_ONLY_KEY: &str = "this management key is read-only";
const FROZEN: &str = "this account is frozen; contact the operator";

impl Actor {
    pub fn account_id(&self) -> Uuid {
        match self {
            Actor::User { account_id, .. }
            | Actor::ManagementKey { account_id, .. }
            | Actor::InferenceKey { account_id, .. } => *account_id,
        }
    }

    /// The user acting, or on whose behalf a key acts.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Actor::User { user_id, .. } => Some(*user_id),
            Actor::ManagementKey { creator, .. } | Actor::InferenceKey { creator, .. } => *creator,
        }
    }

    fn role(&self) -> Option<Role> {
        match self {
            Actor::User { role, .. } => Some(*role),
            _ => None,
        }
    }

    /// Any change: refused while the account is frozen (keys of a frozen account never get
    /// this far: authentication refuses them).
    fn writes(&self) -> Result<()> {
        match self {
            Actor::User { frozen: true, .. } => Err(AccountsError::forbidden(FROZEN)),
            _ => Ok(()),
        }
    }

    fn administrator(&self, what: &str) -> Result<Role> {
        match self.role() {
            Some(r) if r.administers() => Ok(r),
            Some(_) => Err(AccountsError::forbidden(format!(
                "only owners and admins can {what}"
            ))),
            None => Err(AccountsError::forbidden(format!(
                "sign in as an owner or admin to {what}"
            ))),
        }
    }

    /// Listing keys: which ones the caller sees. Management keys see inference keys only.
    pub fn read_keys(&self) -> Result<Visibility> {
        match self {
            Actor::User { role, user_id, .. } => match role {
                Role::Owner | Role::Admin => Ok(Visibility::Account),
                Role::Member => Ok(Visibility::CreatedBy(*user_id)),
                Role::Billing => Err(AccountsError::forbidden(
                    "billing members cannot see keys; they read credits, activity and logs",
                )),
            },
            Actor::ManagementKey { .. } => Ok(Visibility::Account),
            Actor::InferenceKey { .. } => Err(AccountsError::forbidden(NEED_MANAGEMENT)),
        }
    }

    /// Whether one key exists for this caller. Invisible keys answer 404.
    pub fn see_key(&self, key: &KeyFacts) -> Result<()> {
        let visible = match (self.read_keys()?, self) {
            (_, Actor::ManagementKey { .. }) => key.kind == KeyKind::Inference,
            (Visibility::Account, _) => true,
            (Visibility::CreatedBy(u), _) => {
                key.created_by == Some(u) && key.kind == KeyKind::Inference
            }
        };
        if visible {
            Ok(())
        } else {
            Err(AccountsError::NotFound("key"))
        }
    }

    /// Changing or deleting one key.
    pub fn change_key(&self, key: &KeyFacts) -> Result<()> {
        self.see_key(key)?;
        self.writes()?;
        match self {
            Actor::ManagementKey {
                read_only: true, ..
            } => Err(AccountsError::forbidden(READ_ONLY_KEY)),
            _ => Ok(()),
        }
    }

    /// Creating a key of `kind` for `for_user` (None: the caller). Returns the user the key is
    /// created for (its `creator_user_id`); the caller checks that user is a member.
    pub fn create_key(&self, kind: KeyKind, for_user: Option<Uuid>) -> Result<Option<Uuid>> {
        self.writes()?;
        if kind.is_management() {
            // Management keys come only from a signed-in owner or admin, for themselves: a key
            // can never mint a key more powerful than itself.
            self.administrator("create management keys")?;
            if for_user.is_some_and(|u| Some(u) != self.user_id()) {
                return Err(AccountsError::forbidden(
                    "management keys are created for yourself",
                ));
            }
            return Ok(self.user_id());
        }
        match self {
            Actor::User { role, user_id, .. } => match role {
                Role::Owner | Role::Admin => Ok(Some(for_user.unwrap_or(*user_id))),
                Role::Member => match for_user {
                    None => Ok(Some(*user_id)),
                    Some(u) if u == *user_id => Ok(Some(u)),
                    Some(_) => Err(AccountsError::forbidden(
                        "members create keys for themselves only",
                    )),
                },
                Role::Billing => Err(AccountsError::forbidden(
                    "billing members cannot create keys",
                )),
            },
            Actor::ManagementKey {
                read_only: true, ..
            } => Err(AccountsError::forbidden(READ_ONLY_KEY)),
            Actor::ManagementKey { creator, .. } => Ok(for_user.or(*creator)),
            Actor::InferenceKey { .. } => Err(AccountsError::forbidden(NEED_MANAGEMENT)),
        }
    }

    /// Activity and logs: which keys' usage the caller reads.
    pub fn read_usage(&self) -> Result<Visibility> {
        match self {
            Actor::User { role, user_id, .. } => match role {
                Role::Member => Ok(Visibility::CreatedBy(*user_id)),
                _ => Ok(Visibility::Account),
            },
            Actor::ManagementKey { .. } => Ok(Visibility::Account),
            Actor::InferenceKey { .. } => Err(AccountsError::forbidden(NEED_MANAGEMENT)),
        }
    }

    /// One generation by id: inference keys may look up requests too (OpenRouter's clients do
    /// it with the key they called with), as far as their creator could see them.
    pub fn read_generation(&self) -> Result<Visibility> {
        match self {
            Actor::InferenceKey {
                creator: Some(c),
                creator_role: Some(Role::Member | Role::Billing),
                ..
            } => Ok(Visibility::CreatedBy(*c)),
            // A key whose creator left: it was disabled then; whatever is left is its own.
            Actor::InferenceKey {
                creator: Some(c),
                creator_role: None,
                ..
            } => Ok(Visibility::CreatedBy(*c)),
            Actor::InferenceKey { .. } => Ok(Visibility::Account),
            other => other.read_usage(),
        }
    }

    /// The balance: everyone in the account (a member needs to know whether calls will pass).
    pub fn read_credits(&self) -> Result<()> {
        Ok(())
    }

    pub fn read_members(&self) -> Result<()> {
        self.administrator("see the members").map(|_| ())
    }

    pub fn invite(&self, role: Role) -> Result<()> {
        self.administrator("invite members")?;
        self.writes()?;
        if role == Role::Owner {
            return Err(AccountsError::forbidden(
                "nobody is invited as owner; the owner transfers ownership to a member",
            ));
        }
        Ok(())
    }

    /// Changing `target`'s role to `new_role`.
    pub fn change_role(&self, target: &MemberFacts, new_role: Role) -> Result<()> {
        let me = self.administrator("change roles")?;
        self.writes()?;
        if Some(target.user_id) == self.user_id() {
            return Err(AccountsError::forbidden("you cannot change your own role"));
        }
        if target.role == Role::Owner || new_role == Role::Owner {
            return Err(AccountsError::forbidden(
                "ownership changes only by a transfer from the owner",
            ));
        }
        if me == Role::Admin && target.role == Role::Admin {
            return Err(AccountsError::forbidden(
                "admins cannot change another admin's role",
            ));
        }
        Ok(())
    }

    pub fn remove_member(&self, target: &MemberFacts) -> Result<()> {
        let me = self.administrator("remove members")?;
        self.writes()?;
        if Some(target.user_id) == self.user_id() {
            return Err(AccountsError::forbidden(
                "to remove yourself, leave the account",
            ));
        }
        match target.role {
            Role::Owner => Err(AccountsError::forbidden("the owner cannot be removed")),
            Role::Admin if me == Role::Admin => Err(AccountsError::forbidden(
                "admins cannot remove another admin",
            )),
            _ => Ok(()),
        }
    }

    pub fn leave(&self) -> Result<()> {
        match self.role() {
            None => Err(AccountsError::forbidden("sign in to leave an account")),
            Some(Role::Owner) => Err(AccountsError::Conflict(
                "the owner cannot leave; transfer ownership to a member first".into(),
            )),
            Some(_) => Ok(()),
        }
    }

    pub fn transfer_ownership(&self, target: &MemberFacts) -> Result<()> {
        match self.role() {
            Some(Role::Owner) => {}
            _ => {
                return Err(AccountsError::forbidden(
                    "only the owner can transfer ownership",
                ))
            }
        }
        self.writes()?;
        if Some(target.user_id) == self.user_id() {
            return Err(AccountsError::invalid(
                "user_id",
                "you already own this account",
            ));
        }
        Ok(())
    }

    pub fn read_settings(&self) -> Result<()> {
        match self {
            Actor::InferenceKey { .. } => Err(AccountsError::forbidden(NEED_MANAGEMENT)),
            _ => Ok(()),
        }
    }

    pub fn update_settings(&self) -> Result<()> {
        self.administrator("change the account's settings")?;
        self.writes()
    }

    /// The audit log: owners (and operators, through their own API).
    pub fn read_audit(&self) -> Result<()> {
        match self.role() {
            Some(Role::Owner) => Ok(()),
            _ => Err(AccountsError::forbidden(
                "only the owner can read the audit log",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ok(r: Result<impl Sized>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(AccountsError::Forbidden(_)) => "403",
            Err(AccountsError::NotFound(_)) => "404",
            Err(AccountsError::Conflict(_)) => "409",
            Err(AccountsError::Invalid { .. }) => "400",
            Err(_) => "other",
        }
    }

    const ME: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);
    const ACCT: Uuid = Uuid::from_u128(10);

    fn user(role: Role) -> Actor {
        Actor::User {
            user_id: ME,
            account_id: ACCT,
            role,
            frozen: false,
        }
    }

    fn actors() -> Vec<(&'static str, Actor)> {
        vec![
            ("owner", user(Role::Owner)),
            ("admin", user(Role::Admin)),
            ("member", user(Role::Member)),
            ("billing", user(Role::Billing)),
            (
                "mgmt",
                Actor::ManagementKey {
                    key_id: Uuid::from_u128(20),
                    account_id: ACCT,
                    creator: Some(ME),
                    read_only: false,
                },
            ),
            (
                "mgmt_read",
                Actor::ManagementKey {
                    key_id: Uuid::from_u128(21),
                    account_id: ACCT,
                    creator: Some(ME),
                    read_only: true,
                },
            ),
            (
                "inference",
                Actor::InferenceKey {
                    key_id: Uuid::from_u128(22),
                    account_id: ACCT,
                    creator: Some(ME),
                    creator_role: Some(Role::Member),
                },
            ),
        ]
    }

    /// Every rule × every kind of caller, in one table: columns are owner, admin, member,
    /// billing, management key, read-only management key, inference key.
    #[test]
    fn the_rules_table() {
        let own = KeyFacts {
            kind: KeyKind::Inference,
            created_by: Some(ME),
        };
        let others = KeyFacts {
            kind: KeyKind::Inference,
            created_by: Some(OTHER),
        };
        let mgmt_key = KeyFacts {
            kind: KeyKind::Management,
            created_by: Some(OTHER),
        };
        let member = MemberFacts {
            user_id: OTHER,
            role: Role::Member,
        };
        let admin = MemberFacts {
            user_id: OTHER,
            role: Role::Admin,
        };
        let owner = MemberFacts {
            user_id: OTHER,
            role: Role::Owner,
        };
        let myself = MemberFacts {
            user_id: ME,
            role: Role::Member,
        };
        type Rule = Box<dyn Fn(&Actor) -> &'static str>;
        let rules: Vec<(&str, Rule, [&str; 7])> = vec![
            (
                "list keys",
                Box::new(|a| ok(a.read_keys())),
                ["ok", "ok", "ok", "403", "ok", "ok", "403"],
            ),
            (
                "see own key",
                Box::new(move |a| ok(a.see_key(&own))),
                ["ok", "ok", "ok", "403", "ok", "ok", "403"],
            ),
            (
                "see another's key",
                Box::new(move |a| ok(a.see_key(&others))),
                ["ok", "ok", "404", "403", "ok", "ok", "403"],
            ),
            (
                "see a management key",
                Box::new(move |a| ok(a.see_key(&mgmt_key))),
                ["ok", "ok", "404", "403", "404", "404", "403"],
            ),
            (
                "change own key",
                Box::new(move |a| ok(a.change_key(&own))),
                ["ok", "ok", "ok", "403", "ok", "403", "403"],
            ),
            (
                "change another's key",
                Box::new(move |a| ok(a.change_key(&others))),
                ["ok", "ok", "404", "403", "ok", "403", "403"],
            ),
            (
                "create own key",
                Box::new(|a| ok(a.create_key(KeyKind::Inference, None))),
                ["ok", "ok", "ok", "403", "ok", "403", "403"],
            ),
            (
                "create a key for another",
                Box::new(|a| ok(a.create_key(KeyKind::Inference, Some(OTHER)))),
                ["ok", "ok", "403", "403", "ok", "403", "403"],
            ),
            (
                "create a management key",
                Box::new(|a| ok(a.create_key(KeyKind::Management, None))),
                ["ok", "ok", "403", "403", "403", "403", "403"],
            ),
            (
                "read usage",
                Box::new(|a| ok(a.read_usage())),
                ["ok", "ok", "ok", "ok", "ok", "ok", "403"],
            ),
            (
                "read a generation",
                Box::new(|a| ok(a.read_generation())),
                ["ok", "ok", "ok", "ok", "ok", "ok", "ok"],
            ),
            (
                "read credits",
                Box::new(|a| ok(a.read_credits())),
                ["ok", "ok", "ok", "ok", "ok", "ok", "ok"],
            ),
            (
                "read members",
                Box::new(|a| ok(a.read_members())),
                ["ok", "ok", "403", "403", "403", "403", "403"],
            ),
            (
                "invite a member",
                Box::new(|a| ok(a.invite(Role::Member))),
                ["ok", "ok", "403", "403", "403", "403", "403"],
            ),
            (
                "invite an owner",
                Box::new(|a| ok(a.invite(Role::Owner))),
                ["403", "403", "403", "403", "403", "403", "403"],
            ),
            (
                "promote a member to admin",
                Box::new(move |a| ok(a.change_role(&member, Role::Admin))),
                ["ok", "ok", "403", "403", "403", "403", "403"],
            ),
            (
                "demote an admin",
                Box::new(move |a| ok(a.change_role(&admin, Role::Member))),
                ["ok", "403", "403", "403", "403", "403", "403"],
            ),
            (
                "make someone owner",
                Box::new(move |a| ok(a.change_role(&member, Role::Owner))),
                ["403", "403", "403", "403", "403", "403", "403"],
            ),
            (
                "change own role",
                Box::new(move |a| ok(a.change_role(&myself, Role::Admin))),
                ["403", "403", "403", "403", "403", "403", "403"],
            ),
            (
                "remove a member",
                Box::new(move |a| ok(a.remove_member(&member))),
                ["ok", "ok", "403", "403", "403", "403", "403"],
            ),
            (
                "remove an admin",
                Box::new(move |a| ok(a.remove_member(&admin))),
                ["ok", "403", "403", "403", "403", "403", "403"],
            ),
            (
                "remove the owner",
                Box::new(move |a| ok(a.remove_member(&owner))),
                ["403", "403", "403", "403", "403", "403", "403"],
            ),
            (
                "leave",
                Box::new(|a| ok(a.leave())),
                ["409", "ok", "ok", "ok", "403", "403", "403"],
            ),
            (
                "transfer ownership",
                Box::new(move |a| ok(a.transfer_ownership(&member))),
                ["ok", "403", "403", "403", "403", "403", "403"],
            ),
            (
                "read settings",
                Box::new(|a| ok(a.read_settings())),
                ["ok", "ok", "ok", "ok", "ok", "ok", "403"],
            ),
            (
                "update settings",
                Box::new(|a| ok(a.update_settings())),
                ["ok", "ok", "403", "403", "403", "403", "403"],
            ),
            (
                "read the audit log",
                Box::new(|a| ok(a.read_audit())),
                ["ok", "403", "403", "403", "403", "403", "403"],
            ),
        ];
        let actors = actors();
        let mut wrong = Vec::new();
        for (name, rule, expected) in &rules {
            for ((who, actor), want) in actors.iter().zip(expected) {
                let got = rule(actor);
                if got != *want {
                    wrong.push(format!("{name} as {who}: expected {want}, got {got}"));
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn members_and_their_keys_see_only_their_own_usage() {
        assert_eq!(
            user(Role::Member).read_usage().unwrap(),
            Visibility::CreatedBy(ME)
        );
        let key = |role| Actor::InferenceKey {
            key_id: Uuid::from_u128(3),
            account_id: ACCT,
            creator: Some(ME),
            creator_role: role,
        };
        assert_eq!(
            key(Some(Role::Member)).read_generation().unwrap(),
            Visibility::CreatedBy(ME)
        );
        assert_eq!(
            key(Some(Role::Admin)).read_generation().unwrap(),
            Visibility::Account
        );
        let cli_key = Actor::InferenceKey {
            key_id: Uuid::from_u128(3),
            account_id: ACCT,
            creator: None,
            creator_role: None,
        };
        assert_eq!(cli_key.read_generation().unwrap(), Visibility::Account);
    }

    #[test]
    fn a_frozen_account_reads_but_changes_nothing() {
        let frozen = Actor::User {
            user_id: ME,
            account_id: ACCT,
            role: Role::Owner,
            frozen: true,
        };
        assert!(frozen.read_keys().is_ok() && frozen.read_usage().is_ok());
        assert!(matches!(
            frozen.create_key(KeyKind::Inference, None),
            Err(AccountsError::Forbidden(_))
        ));
        assert!(matches!(
            frozen.update_settings(),
            Err(AccountsError::Forbidden(_))
        ));
    }
}
