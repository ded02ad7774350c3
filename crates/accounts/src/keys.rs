//! Parsing what the management API is asked to set on a key or on the account's settings.
//! Every field is checked before anything changes; an error names the field.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{AccountsError, Result};
use crate::types::KeyKind;

/// The most a key limit or default limit may be, in USD.
const MAX_LIMIT: i64 = 1_000_000_000;

/// `None`: absent; `Some(None)`: explicitly null; `Some(Some(v))`: a value.
pub type Patch<T> = Option<Option<T>>;

#[derive(Debug, Clone, PartialEq)]
pub struct NewKeySpec {
    pub name: String,
    pub kind: KeyKind,
    pub limit: Patch<Decimal>,
    pub limit_reset: Patch<&'static str>,
    pub expires_at: Option<DateTime<Utc>>,
    pub creator_user_id: Option<Uuid>,
    pub workspace_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub disabled: Option<bool>,
    pub limit: Patch<Decimal>,
    pub limit_reset: Patch<&'static str>,
    pub expires_at: Patch<DateTime<Utc>>,
    pub rate_limit: Option<RatePatch>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SettingsPatch {
    pub name: Option<String>,
    pub allow_training: Option<bool>,
    pub default_key_limit: Patch<Decimal>,
    pub default_key_limit_reset: Patch<&'static str>,
    /// The account's own limits (all keys together).
    pub rate_limit: Option<RatePatch>,
    /// Limits of keys that set none of their own.
    pub default_key_rate_limit: Option<RatePatch>,
}

/// Per-minute rate limits sent as `{"requests": n, "tokens": n}` (each optional, null to
/// clear); the whole object null clears both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RatePatch {
    pub requests: Patch<i64>,
    pub tokens: Patch<i64>,
}

impl RatePatch {
    /// Applies the patch to the current values.
    pub fn apply(&self, requests: Option<i64>, tokens: Option<i64>) -> (Option<i64>, Option<i64>) {
        (
            self.requests.unwrap_or(requests),
            self.tokens.unwrap_or(tokens),
        )
    }
}

/// The most a per-minute limit may be (requests or tokens).
const MAX_PER_MINUTE: i64 = 1_000_000_000;

fn rate_patch(field: &'static str, v: &Value) -> Result<RatePatch> {
    let m = match v {
        Value::Null => {
            return Ok(RatePatch {
                requests: Some(None),
                tokens: Some(None),
            })
        }
        Value::Object(m) => m,
        _ => {
            return Err(AccountsError::invalid(
                field,
                format!("{field} must be an object {{\"requests\", \"tokens\"}} or null"),
            ))
        }
    };
    if let Some(unknown) = m
        .keys()
        .find(|k| !["requests", "tokens", "interval"].contains(&k.as_str()))
    {
        return Err(AccountsError::invalid(
            field,
            format!("{field}: unknown field '{unknown}' (allowed: requests, tokens)"),
        ));
    }
    // `interval` may be sent back as read; limits are always per minute.
    match m.get("interval") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "1m" || s == "60s" => {}
        Some(_) => {
            return Err(AccountsError::invalid(
                field,
                format!("{field}.interval: limits are per minute (\"1m\")"),
            ))
        }
    }
    let one = |name: &str| -> Result<Patch<i64>> {
        match m.get(name) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(v) => match v.as_i64() {
                Some(n) if (1..=MAX_PER_MINUTE).contains(&n) => Ok(Some(Some(n))),
                _ => Err(AccountsError::Invalid {
                    field,
                    message: format!(
                        "{field}.{name} must be a whole number from 1 to {MAX_PER_MINUTE} per minute, or null"
                    ),
                }),
            },
        }
    };
    Ok(RatePatch {
        requests: one("requests")?,
        tokens: one("tokens")?,
    })
}

fn object<'a>(body: &'a Value, allowed: &[&str]) -> Result<&'a Map<String, Value>> {
    let map = body
        .as_object()
        .ok_or_else(|| AccountsError::invalid("body", "the body must be a JSON object"))?;
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(AccountsError::Invalid {
            field: "body",
            message: format!(
                "unknown field '{unknown}' (allowed: {})",
                allowed.join(", ")
            ),
        });
    }
    Ok(map)
}

fn name(field: &'static str, v: &Value) -> Result<String> {
    let s = v
        .as_str()
        .ok_or_else(|| AccountsError::invalid(field, format!("{field} must be a string")))?
        .trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(AccountsError::invalid(
            field,
            format!("{field} must be 1 to 200 printable characters"),
        ));
    }
    Ok(s.to_string())
}

fn bool_field(field: &'static str, v: &Value) -> Result<bool> {
    v.as_bool()
        .ok_or_else(|| AccountsError::invalid(field, format!("{field} must be true or false")))
}

/// A USD amount sent as a JSON number (or a decimal string), exact to 12 decimals.
pub fn usd_limit(field: &'static str, v: &Value) -> Result<Option<Decimal>> {
    let text = match v {
        Value::Null => return Ok(None),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_string(),
        _ => {
            return Err(AccountsError::invalid(
                field,
                format!("{field} must be a number of USD or null"),
            ))
        }
    };
    let d = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| AccountsError::invalid(field, format!("{field}: '{text}' is not a number")))?;
    if d.is_sign_negative() && !d.is_zero() {
        return Err(AccountsError::invalid(
            field,
            format!("{field} must not be negative"),
        ));
    }
    if d.normalize().scale() > 12 {
        return Err(AccountsError::invalid(
            field,
            format!("{field} has more than 12 decimal places"),
        ));
    }
    if d > Decimal::from(MAX_LIMIT) {
        return Err(AccountsError::invalid(
            field,
            format!("{field} must be at most {MAX_LIMIT}"),
        ));
    }
    Ok(Some(d.normalize()))
}

fn reset(field: &'static str, v: &Value) -> Result<Option<&'static str>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => match s.as_str() {
            "daily" => Ok(Some("daily")),
            "weekly" => Ok(Some("weekly")),
            "monthly" => Ok(Some("monthly")),
            _ => Err(AccountsError::invalid(
                field,
                format!("{field} must be daily, weekly, monthly or null"),
            )),
        },
        _ => Err(AccountsError::invalid(
            field,
            format!("{field} must be daily, weekly, monthly or null"),
        )),
    }
}

/// An ISO 8601 time in UTC (`Z` or `+00:00`), in the future.
fn expiry(field: &'static str, v: &Value) -> Result<Option<DateTime<Utc>>> {
    let s = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s,
        _ => {
            return Err(AccountsError::invalid(
                field,
                format!("{field} must be an ISO 8601 UTC time or null"),
            ))
        }
    };
    let t = DateTime::parse_from_rfc3339(s).map_err(|_| {
        AccountsError::invalid(field, format!("{field}: '{s}' is not an ISO 8601 time"))
    })?;
    if t.offset().local_minus_utc() != 0 {
        return Err(AccountsError::invalid(
            field,
            format!("{field} must be in UTC (end with Z)"),
        ));
    }
    let t = t.with_timezone(&Utc);
    if t <= Utc::now() {
        return Err(AccountsError::invalid(
            field,
            format!("{field} must be in the future"),
        ));
    }
    Ok(Some(t))
}

fn uuid_field(field: &'static str, v: &Value) -> Result<Option<Uuid>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Uuid::parse_str(s)
            .map(Some)
            .map_err(|_| AccountsError::invalid(field, format!("{field}: '{s}' is not an id"))),
        _ => Err(AccountsError::invalid(
            field,
            format!("{field} must be a string id"),
        )),
    }
}

fn check_reset_needs_limit(limit: &Patch<Decimal>, reset: &Patch<&'static str>) -> Result<()> {
    if matches!(reset, Some(Some(_))) && matches!(limit, Some(None)) {
        return Err(AccountsError::invalid(
            "limit_reset",
            "limit_reset needs a limit",
        ));
    }
    Ok(())
}

impl NewKeySpec {
    pub fn parse(body: &Value) -> Result<NewKeySpec> {
        let m = object(
            body,
            &[
                "name",
                "limit",
                "limit_reset",
                "expires_at",
                "include_byok_in_limit",
                "creator_user_id",
                "workspace_id",
                "kind",
            ],
        )?;
        let name = name(
            "name",
            m.get("name")
                .ok_or_else(|| AccountsError::invalid("name", "name is required"))?,
        )?;
        let kind = match m.get("kind") {
            None | Some(Value::Null) => KeyKind::Inference,
            Some(Value::String(s)) => s
                .parse()
                .map_err(|e: String| AccountsError::invalid("kind", e))?,
            Some(_) => return Err(AccountsError::invalid("kind", "kind must be a string")),
        };
        if let Some(v) = m.get("include_byok_in_limit") {
            bool_field("include_byok_in_limit", v)?;
        }
        let limit = m.get("limit").map(|v| usd_limit("limit", v)).transpose()?;
        let limit_reset = m
            .get("limit_reset")
            .map(|v| reset("limit_reset", v))
            .transpose()?;
        check_reset_needs_limit(&limit, &limit_reset)?;
        if kind.is_management() && (limit.flatten().is_some() || limit_reset.flatten().is_some()) {
            return Err(AccountsError::invalid(
                "limit",
                "management keys cannot spend, so they take no limit",
            ));
        }
        Ok(NewKeySpec {
            name,
            kind,
            limit,
            limit_reset,
            expires_at: m
                .get("expires_at")
                .map(|v| expiry("expires_at", v))
                .transpose()?
                .flatten(),
            creator_user_id: m
                .get("creator_user_id")
                .map(|v| uuid_field("creator_user_id", v))
                .transpose()?
                .flatten(),
            workspace_id: m
                .get("workspace_id")
                .map(|v| uuid_field("workspace_id", v))
                .transpose()?
                .flatten(),
        })
    }
}

impl KeyPatch {
    pub fn parse(body: &Value) -> Result<KeyPatch> {
        let m = object(
            body,
            &[
                "name",
                "disabled",
                "limit",
                "limit_reset",
                "expires_at",
                "include_byok_in_limit",
                "rate_limit",
            ],
        )?;
        if let Some(v) = m.get("include_byok_in_limit") {
            bool_field("include_byok_in_limit", v)?;
        }
        let p = KeyPatch {
            rate_limit: m
                .get("rate_limit")
                .map(|v| rate_patch("rate_limit", v))
                .transpose()?,
            name: m.get("name").map(|v| name("name", v)).transpose()?,
            disabled: m
                .get("disabled")
                .map(|v| bool_field("disabled", v))
                .transpose()?,
            limit: m.get("limit").map(|v| usd_limit("limit", v)).transpose()?,
            limit_reset: m
                .get("limit_reset")
                .map(|v| reset("limit_reset", v))
                .transpose()?,
            expires_at: m
                .get("expires_at")
                .map(|v| expiry("expires_at", v))
                .transpose()?,
        };
        check_reset_needs_limit(&p.limit, &p.limit_reset)?;
        Ok(p)
    }
}

impl SettingsPatch {
    pub fn parse(body: &Value) -> Result<SettingsPatch> {
        let m = object(
            body,
            &[
                "name",
                "allow_training",
                "default_key_limit",
                "default_key_limit_reset",
                "rate_limit",
                "default_key_rate_limit",
            ],
        )?;
        let p = SettingsPatch {
            rate_limit: m
                .get("rate_limit")
                .map(|v| rate_patch("rate_limit", v))
                .transpose()?,
            default_key_rate_limit: m
                .get("default_key_rate_limit")
                .map(|v| rate_patch("default_key_rate_limit", v))
                .transpose()?,
            name: m.get("name").map(|v| name("name", v)).transpose()?,
            allow_training: m
                .get("allow_training")
                .map(|v| bool_field("allow_training", v))
                .transpose()?,
            default_key_limit: m
                .get("default_key_limit")
                .map(|v| usd_limit("default_key_limit", v))
                .transpose()?,
            default_key_limit_reset: m
                .get("default_key_limit_reset")
                .map(|v| reset("default_key_limit_reset", v))
                .transpose()?,
        };
        if matches!(p.default_key_limit_reset, Some(Some(_)))
            && matches!(p.default_key_limit, Some(None))
        {
            return Err(AccountsError::invalid(
                "default_key_limit_reset",
                "default_key_limit_reset needs a default_key_limit",
            ));
        }
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn field(r: Result<impl std::fmt::Debug>) -> &'static str {
        match r {
            Err(AccountsError::Invalid { field, .. }) => field,
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn new_keys_are_parsed_strictly() {
        let k = NewKeySpec::parse(
            &json!({"name": " ci ", "limit": 12.5, "limit_reset": "monthly",
                                          "expires_at": "2999-01-01T00:00:00Z"}),
        )
        .unwrap();
        assert_eq!(k.name, "ci");
        assert_eq!(k.limit, Some(Some(Decimal::new(125, 1))));
        assert_eq!(k.kind, KeyKind::Inference);
        for (body, f) in [
            (json!({}), "name"),
            (json!({"name": ""}), "name"),
            (json!({"name": 3}), "name"),
            (json!({"name": "a", "limit": -1}), "limit"),
            (json!({"name": "a", "limit": "lots"}), "limit"),
            (json!({"name": "a", "limit": 0.0000000000001}), "limit"),
            (json!({"name": "a", "limit_reset": "yearly"}), "limit_reset"),
            (
                json!({"name": "a", "limit": null, "limit_reset": "daily"}),
                "limit_reset",
            ),
            (
                json!({"name": "a", "expires_at": "2999-01-01T00:00:00+02:00"}),
                "expires_at",
            ),
            (
                json!({"name": "a", "expires_at": "2000-01-01T00:00:00Z"}),
                "expires_at",
            ),
            (json!({"name": "a", "expires_at": "tomorrow"}), "expires_at"),
            (json!({"name": "a", "kind": "root"}), "kind"),
            (
                json!({"name": "a", "kind": "management", "limit": 5}),
                "limit",
            ),
            (
                json!({"name": "a", "creator_user_id": "bob"}),
                "creator_user_id",
            ),
            (json!({"name": "a", "colour": "red"}), "body"),
            (json!([1]), "body"),
        ] {
            assert_eq!(field(NewKeySpec::parse(&body)), f, "{body}");
        }
    }

    #[test]
    fn patches_tell_absent_from_null() {
        let p = KeyPatch::parse(&json!({"limit": null})).unwrap();
        assert_eq!(p.limit, Some(None));
        assert_eq!(p.limit_reset, None);
        let p = KeyPatch::parse(&json!({"disabled": true})).unwrap();
        assert_eq!(p.disabled, Some(true));
        assert_eq!(p.limit, None);
        assert_eq!(
            field(KeyPatch::parse(&json!({"disabled": "yes"}))),
            "disabled"
        );
        let s = SettingsPatch::parse(&json!({"allow_training": true, "default_key_limit": "5"}))
            .unwrap();
        assert_eq!(s.default_key_limit, Some(Some(Decimal::new(5, 0))));
        assert_eq!(
            field(SettingsPatch::parse(&json!({"allow_training": 1}))),
            "allow_training"
        );
    }
}
