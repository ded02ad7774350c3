//! Per-key spending limits and their reset periods (UTC calendar days, ISO weeks, months).

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use infron_store::hot::KeyScope;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Usd;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitReset {
    Daily,
    Weekly,
    Monthly,
}

impl LimitReset {
    pub fn parse(s: &str) -> Option<LimitReset> {
        match s {
            "daily" => Some(LimitReset::Daily),
            "weekly" => Some(LimitReset::Weekly),
            "monthly" => Some(LimitReset::Monthly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LimitReset::Daily => "daily",
            LimitReset::Weekly => "weekly",
            LimitReset::Monthly => "monthly",
        }
    }
}

/// A key's limit as the request path needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLimit {
    pub key_id: Uuid,
    pub limit: Usd,
    pub reset: Option<LimitReset>,
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// Start of the period containing `at`; must agree with SQL `infron_limit_period`.
pub fn period_start(reset: Option<LimitReset>, at: DateTime<Utc>) -> DateTime<Utc> {
    let day = at.date_naive();
    match reset {
        None => DateTime::UNIX_EPOCH,
        Some(LimitReset::Daily) => midnight(day),
        Some(LimitReset::Weekly) => {
            midnight(day - Duration::days(i64::from(day.weekday().num_days_from_monday())))
        }
        Some(LimitReset::Monthly) => midnight(day.with_day(1).unwrap_or(day)),
    }
}

/// Start of the next period (None for limits that never reset).
pub fn period_end(reset: Option<LimitReset>, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = period_start(reset, at);
    match reset? {
        LimitReset::Daily => Some(start + Duration::days(1)),
        LimitReset::Weekly => Some(start + Duration::days(7)),
        LimitReset::Monthly => {
            let d = start.date_naive();
            let (y, m) = if d.month() == 12 {
                (d.year() + 1, 1)
            } else {
                (d.year(), d.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1).map(midnight)
        }
    }
}

impl KeyLimit {
    pub fn scope(&self, at: DateTime<Utc>) -> KeyScope {
        KeyScope {
            key_id: self.key_id,
            period_start: period_start(self.reset, at).timestamp(),
        }
    }
}

/// Keeps the hot copy of a key's current period in step when its limit changes from `before`
/// to `after` (limit, reset). Only a changed amount under the same reset needs it: a new or
/// removed limit, or a new reset period, starts from Postgres on the next reservation.
pub async fn apply_limit_change(
    hot: &infron_store::hot::HotState,
    account: Uuid,
    key_id: Uuid,
    before: (Option<rust_decimal::Decimal>, Option<&str>),
    after: (Option<rust_decimal::Decimal>, Option<&str>),
) -> Result<(), crate::BillingError> {
    if let (Some(old), Some(new)) = (before.0, after.0) {
        if before.1 == after.1 && old != new {
            let reset = after.1.and_then(LimitReset::parse);
            let scope = KeyScope {
                key_id,
                period_start: period_start(reset, Utc::now()).timestamp(),
            };
            let delta = Usd::new(new - old)?.to_pico()?;
            hot.adjust_key(account, &scope, delta).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn periods_are_utc_calendar_periods() {
        let at = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            period_start(Some(LimitReset::Daily), at),
            Utc.with_ymd_and_hms(2026, 12, 31, 0, 0, 0).unwrap()
        );
        // 2026-12-31 is a Thursday; ISO weeks start on Monday.
        assert_eq!(
            period_start(Some(LimitReset::Weekly), at),
            Utc.with_ymd_and_hms(2026, 12, 28, 0, 0, 0).unwrap()
        );
        assert_eq!(
            period_start(Some(LimitReset::Monthly), at),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            period_end(Some(LimitReset::Monthly), at),
            Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
        );
        assert_eq!(period_start(None, at), DateTime::UNIX_EPOCH);
        assert_eq!(period_end(None, at), None);
    }
}
