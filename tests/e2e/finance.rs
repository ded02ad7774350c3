//! Finance views (migrations/20261123000003_finance.sql): after real traffic through the gateway
//! they return exactly what the ledger and the request logs imply, stay exact across replays,
//! compaction and rebuilds, and the `infron_finance` role can read them but write nothing.

use chrono::NaiveDate;
use infron_store::ledger::{self, platform, NewTransaction};
use infron_store::request_logs::RequestLogRow;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::*;

/// A chat request that must succeed; returns its request id.
async fn chat_ok(app: &TestApp, key: &str, model: &str, directive: Value, stream: bool) -> String {
    let mut body = chat_body(model, Some(directive));
    // Holds large enough for the usage the mock reports (beyond a hold is overage).
    body["max_tokens"] = json!(1000);
    if stream {
        body["stream"] = json!(true);
    }
    let res = app.post_chat(key, &body).await;
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    let _ = res.text().await.unwrap();
    id
}

/// Rows of a query rendered as JSON text, for comparing whole result sets.
async fn snapshot(pg: &PgPool, sql: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(&format!(
        "SELECT row_to_json(q)::text FROM ({sql}) q ORDER BY 1"
    ))
    .fetch_all(pg)
    .await
    .unwrap()
}

const SNAPSHOTS: [&str; 9] = [
    "SELECT * FROM finance.daily_usage",
    "SELECT * FROM finance.daily_usage_by_account",
    "SELECT * FROM finance.daily_usage_by_key",
    "SELECT * FROM finance.daily_usage_by_model",
    "SELECT * FROM finance.daily_usage_by_provider",
    "SELECT * FROM finance.daily_revenue",
    "SELECT * FROM finance.daily_book_movements",
    "SELECT day, account_id, net_change, closing_balance FROM finance.daily_account_activity",
    "SELECT * FROM finance.usage_reconciliation",
];

async fn all_snapshots(pg: &PgPool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for q in SNAPSHOTS {
        out.push(snapshot(pg, q).await);
    }
    out
}

type UsageKey = (
    NaiveDate,
    Uuid,
    Option<Uuid>,
    Option<String>,
    Option<String>,
);
type UsageSums = (i64, i64, i64, i64, i64, i64, Decimal);

#[derive(sqlx::FromRow)]
struct UsageRow {
    day: NaiveDate,
    account_id: Uuid,
    api_key_id: Option<Uuid>,
    model: Option<String>,
    provider: Option<String>,
    requests: i64,
    failed_requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    cached_tokens: i64,
    reasoning_tokens: i64,
    cost: Decimal,
}

#[derive(sqlx::FromRow)]
struct ReconRow {
    day: NaiveDate,
    account_id: Uuid,
    charged_requests: i64,
    usage_transactions: i64,
    logged_cost: Decimal,
    ledger_charged: Decimal,
    ledger_revenue: Decimal,
    difference: Decimal,
}

#[tokio::test]
async fn finance_views_match_the_ledger_and_request_logs() {
    let app = spawn_app().await;
    let a = app.tenant("10").await;
    let b = app.tenant("5").await;
    let (a_key2, a_key2_id) = app.new_key(a.account).await;
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        a.account,
        "2.5".parse().unwrap(),
        "finance test",
        "grant:finance-extra".into(),
    )
    .await
    .unwrap();

    // Traffic: two tenants, two keys, two models, a stream, a failure.
    let mut ids = vec![
        chat_ok(
            &app,
            &a.key,
            "test/chat",
            json!({"prompt_tokens": 120, "completion_tokens": 30, "cached_tokens": 20}),
            false,
        )
        .await,
        chat_ok(
            &app,
            &a.key,
            "test/chat",
            json!({"prompt_tokens": 50, "completion_tokens": 10}),
            true,
        )
        .await,
        chat_ok(
            &app,
            &a_key2,
            "test/backup",
            json!({"prompt_tokens": 100, "completion_tokens": 100}),
            false,
        )
        .await,
        chat_ok(
            &app,
            &b.key,
            "test/chat",
            json!({"prompt_tokens": 10, "completion_tokens": 10, "reasoning_tokens": 4}),
            false,
        )
        .await,
        chat_ok(
            &app,
            &b.key,
            "test/chat",
            json!({"prompt_tokens": 7, "completion_tokens": 3}),
            true,
        )
        .await,
    ];
    let failed = app
        .post_chat(
            &a.key,
            &chat_body("test/chat", Some(json!({"status": 500}))),
        )
        .await;
    assert_eq!(failed.status(), 502);
    if let Some(id) = failed.headers().get("x-request-id") {
        ids.push(id.to_str().unwrap().to_string());
    }
    for id in &ids {
        app.log_row(id).await;
    }
    app.settled().await;
    app.ledger_clean().await;

    let logs: Vec<RequestLogRow> = sqlx::query_as("SELECT * FROM request_logs")
        .fetch_all(&app.pg)
        .await
        .unwrap();
    assert_eq!(logs.len(), 6, "five answers and one failure are logged");
    assert!(logs.iter().any(|r| r.api_key_id == Some(a_key2_id)));
    let charged: Decimal = logs.iter().map(|r| r.cost).sum();
    let charged_a: Decimal = logs
        .iter()
        .filter(|r| r.account_id == a.account)
        .map(|r| r.cost)
        .sum();
    let charged_b = charged - charged_a;
    assert!(charged_a > Decimal::ZERO && charged_b > Decimal::ZERO);
    let granted_a = dec("12.5");
    let granted_b = dec("5");
    assert_eq!(app.balance(a.account).await, granted_a - charged_a);
    assert_eq!(app.balance(b.account).await, granted_b - charged_b);

    // Daily usage per account, key, model and provider equals the request logs, group by group.
    let mut expected: std::collections::BTreeMap<UsageKey, UsageSums> = Default::default();
    for r in &logs {
        let day = r.completed_at.date_naive();
        let e = expected
            .entry((
                day,
                r.account_id,
                r.api_key_id,
                r.model.clone(),
                r.provider.clone(),
            ))
            .or_insert((0, 0, 0, 0, 0, 0, Decimal::ZERO));
        e.0 += 1;
        e.1 += i64::from(r.status >= 400);
        e.2 += r.prompt_tokens;
        e.3 += r.completion_tokens;
        e.4 += r.cached_tokens;
        e.5 += r.reasoning_tokens;
        e.6 += r.cost;
    }
    let rows: Vec<UsageRow> = sqlx::query_as(
        "SELECT day, account_id, api_key_id, model, provider, requests, failed_requests, \
                prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost \
         FROM finance.daily_usage",
    )
    .fetch_all(&app.pg)
    .await
    .unwrap();
    let got: std::collections::BTreeMap<UsageKey, UsageSums> = rows
        .into_iter()
        .map(|r| {
            (
                (r.day, r.account_id, r.api_key_id, r.model, r.provider),
                (
                    r.requests,
                    r.failed_requests,
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.cached_tokens,
                    r.reasoning_tokens,
                    r.cost,
                ),
            )
        })
        .collect();
    assert_eq!(got, expected);

    // Per account and day: the logged cost is exactly what the ledger charged the tenant's
    // credits book and recognised as usage revenue.
    let recon: Vec<ReconRow> = sqlx::query_as(
        "SELECT day, account_id, charged_requests, usage_transactions, logged_cost, \
                    ledger_charged, ledger_revenue, difference FROM finance.usage_reconciliation",
    )
    .fetch_all(&app.pg)
    .await
    .unwrap();
    assert!(!recon.is_empty());
    for r in &recon {
        let (day, account) = (r.day, r.account_id);
        let raw: (Decimal, i64) = sqlx::query_as(
            "SELECT coalesce(sum(e.amount), 0), count(*) FROM ledger_entries e \
             JOIN ledger_transactions t ON t.id = e.transaction_id \
             JOIN ledger_accounts la ON la.id = e.ledger_account_id \
             WHERE t.kind = 'usage' AND la.kind = 'credits' AND la.account_id = $1 \
               AND (t.effective_at AT TIME ZONE 'UTC')::date = $2",
        )
        .bind(account)
        .bind(day)
        .fetch_one(&app.pg)
        .await
        .unwrap();
        assert_eq!(r.ledger_charged, raw.0, "{day} {account}");
        assert_eq!(r.usage_transactions, raw.1);
        assert_eq!(r.logged_cost, r.ledger_charged);
        assert_eq!(r.logged_cost, r.ledger_revenue);
        // Usage transactions summarize the charged requests of a writer batch.
        assert!(r.usage_transactions >= 1 && r.usage_transactions <= r.charged_requests);
        assert_eq!(r.difference, Decimal::ZERO);
    }
    let by_account: Vec<(Uuid, Decimal, i64)> = sqlx::query_as(
        "SELECT account_id, sum(cost), sum(requests)::bigint FROM finance.daily_usage_by_account \
         GROUP BY account_id",
    )
    .fetch_all(&app.pg)
    .await
    .unwrap();
    for (account, cost, requests) in by_account {
        let (want_cost, want_requests) = if account == a.account {
            (charged_a, 4)
        } else {
            assert_eq!(account, b.account);
            (charged_b, 2)
        };
        assert_eq!((cost, requests), (want_cost, want_requests));
    }
    for view in [
        "finance.daily_usage_by_key",
        "finance.daily_usage_by_model",
        "finance.daily_usage_by_provider",
    ] {
        let (cost, requests): (Decimal, i64) = sqlx::query_as(&format!(
            "SELECT sum(cost), sum(requests)::bigint FROM {view}"
        ))
        .fetch_one(&app.pg)
        .await
        .unwrap();
        assert_eq!((cost, requests), (charged, 6), "{view}");
    }
    let unresolved: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(requests), 0)::bigint FROM finance.daily_usage_by_provider \
         WHERE provider IS NULL",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(
        unresolved, 1,
        "the failed request was answered by no provider"
    );

    // Revenue, grants, liabilities and balances.
    let revenue: (Decimal, Decimal, Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT sum(usage_revenue), sum(net_revenue), sum(grants_expense), \
                sum(net_revenue_after_grants), sum(cash_in) FROM finance.daily_revenue",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(
        revenue,
        (
            charged,
            charged,
            granted_a + granted_b,
            charged - granted_a - granted_b,
            Decimal::ZERO
        )
    );
    let balance_sum: Decimal =
        sqlx::query_scalar("SELECT sum(balance) FROM ledger_accounts WHERE kind = 'credits'")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    let liabilities: (i64, Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT tenants, total_liability, owed_to_tenants, owed_by_tenants FROM finance.liabilities",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(balance_sum, granted_a + granted_b - charged);
    assert_eq!(
        liabilities,
        (2, balance_sum, balance_sum, Decimal::ZERO),
        "liabilities are the sum of the tenants' balances"
    );
    let closing: Decimal = sqlx::query_scalar(
        "SELECT closing_liability FROM finance.daily_liabilities ORDER BY day DESC LIMIT 1",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(closing, balance_sum);
    for (t, granted, used) in [(&a, granted_a, charged_a), (&b, granted_b, charged_b)] {
        let bal: (Decimal, Decimal, Decimal, Decimal, bool) = sqlx::query_as(
            "SELECT balance, total_credited, total_debited, balance_from_entries, consistent \
             FROM finance.balances WHERE account_id = $1",
        )
        .bind(t.account)
        .fetch_one(&app.pg)
        .await
        .unwrap();
        let balance = granted - used;
        assert_eq!(bal, (balance, granted, used, balance, true));
        let activity: (Decimal, Decimal, Decimal) = sqlx::query_as(
            "SELECT sum(granted), sum(used), \
                    (array_agg(closing_balance ORDER BY day DESC))[1] \
             FROM finance.daily_account_activity WHERE account_id = $1",
        )
        .bind(t.account)
        .fetch_one(&app.pg)
        .await
        .unwrap();
        assert_eq!(activity, (granted, used, balance));
        let statement: Vec<(String, Decimal, Decimal)> = sqlx::query_as(
            "SELECT kind, amount, balance_after FROM finance.account_statement($1, \
                 current_date - 2, current_date + 2)",
        )
        .bind(t.account)
        .fetch_all(&app.pg)
        .await
        .unwrap();
        // One statement line per usage transaction, each summarizing a writer batch.
        let usage_txns: std::collections::HashSet<Uuid> = logs
            .iter()
            .filter(|r| r.account_id == t.account && !r.cost.is_zero())
            .filter_map(|r| r.usage_txn_id)
            .collect();
        assert_eq!(
            statement.iter().filter(|s| s.0 == "usage").count(),
            usage_txns.len()
        );
        assert_eq!(
            statement.iter().map(|s| s.1).sum::<Decimal>(),
            balance,
            "the statement adds up to the balance"
        );
        assert_eq!(statement.last().unwrap().2, balance);
    }
    let inconsistent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM finance.platform_books WHERE NOT consistent")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert_eq!(inconsistent, 0);

    // A replayed settlement batch (the writer crashed before acknowledging) changes nothing,
    // nor does compaction or a rebuild from the raw logs.
    let before = all_snapshots(&app.pg).await;
    let replayed = infron_billing::writer::post(&app.pg, &replay_entries(&logs))
        .await
        .unwrap();
    assert_eq!(replayed.replays, logs.len());
    assert!(replayed.charged.is_empty());
    assert_eq!(all_snapshots(&app.pg).await, before, "replay");
    let compacted: Vec<(String, i64, i64)> =
        sqlx::query_as("SELECT * FROM finance.compact_rollups()")
            .fetch_all(&app.pg)
            .await
            .unwrap();
    assert_eq!(compacted.len(), 4);
    assert_eq!(compacted[2].0, "activity_daily");
    assert_eq!(compacted[3].0, "activity_hourly");
    assert!(compacted
        .iter()
        .all(|(_, merged, written)| merged >= written));
    // Each usage posting wrote its own ledger delta rows: several per tenant and day to merge.
    assert!(compacted[1].1 > compacted[1].2, "{compacted:?}");
    let duplicates: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM (SELECT 1 FROM finance.usage_daily \
                  GROUP BY day, account_id, api_key_id, model, provider HAVING count(*) > 1) u) + \
                (SELECT count(*) FROM (SELECT 1 FROM finance.ledger_daily \
                  GROUP BY day, ledger_account_id, txn_kind, account_id HAVING count(*) > 1) l) + \
                (SELECT count(*) FROM (SELECT 1 FROM finance.activity_daily \
                  GROUP BY day, account_id, dim, api_key_id, model, provider HAVING count(*) > 1) d) + \
                (SELECT count(*) FROM (SELECT 1 FROM finance.activity_hourly \
                  GROUP BY hour, account_id, dim, api_key_id, model, provider HAVING count(*) > 1) h)",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(duplicates, 0, "one row per group after compaction");
    assert_eq!(all_snapshots(&app.pg).await, before, "compaction");
    // The activity rollups count every request and its cost once, per key and per model and
    // provider: hourly by the hour it started, daily as usage_daily.
    for (dim, cols) in [
        ("k", "coalesce(api_key_id::text, '') AS g1, '' AS g2"),
        (
            "m",
            "coalesce(model, '') AS g1, coalesce(provider, '') AS g2",
        ),
    ] {
        let drift: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM (SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') AS h, \
                    account_id, {cols}, count(*) AS n, sum(cost) AS c FROM request_logs \
                    GROUP BY 1, 2, 3, 4) r \
             FULL JOIN (SELECT hour AT TIME ZONE 'UTC' AS h, account_id, {cols}, sum(requests) AS n, \
                    sum(cost) AS c FROM finance.activity_hourly WHERE dim = '{dim}' \
                    GROUP BY 1, 2, 3, 4) u USING (h, account_id, g1, g2) \
             WHERE r.n IS DISTINCT FROM u.n OR r.c IS DISTINCT FROM u.c"
        ))
        .fetch_one(&app.pg)
        .await
        .unwrap();
        assert_eq!(drift, 0, "activity_hourly, dim {dim}");
        let drift: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM (SELECT day, account_id, {cols}, sum(requests) AS n, \
                    sum(cost) AS c FROM finance.usage_daily GROUP BY 1, 2, 3, 4) d \
             FULL JOIN (SELECT day, account_id, {cols}, sum(requests) AS n, sum(cost) AS c \
                    FROM finance.activity_daily WHERE dim = '{dim}' GROUP BY 1, 2, 3, 4) a \
                    USING (day, account_id, g1, g2) \
             WHERE d.n IS DISTINCT FROM a.n OR d.c IS DISTINCT FROM a.c"
        ))
        .fetch_one(&app.pg)
        .await
        .unwrap();
        assert_eq!(drift, 0, "activity_daily, dim {dim}");
    }
    let (first, last): (NaiveDate, NaiveDate) =
        sqlx::query_as("SELECT min(day), max(day) FROM finance.usage_daily")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    let drift: i64 = sqlx::query_scalar("SELECT count(*) FROM finance.usage_rollup_drift($1, $2)")
        .bind(first)
        .bind(last)
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert_eq!(drift, 0);
    sqlx::query("SELECT finance.rebuild_usage_daily($1, $2), finance.rebuild_ledger_daily($1, $2)")
        .bind(first - chrono::Days::new(1))
        .bind(last + chrono::Days::new(1))
        .execute(&app.pg)
        .await
        .unwrap();
    assert_eq!(all_snapshots(&app.pg).await, before, "rebuild");

    // Money in and out through Stripe and expiry, posted with billing's own posting rules:
    // a $100 top-up ($105.35 paid), a $20 refund, then a dispute of the rest of the payment
    // (credits first, then the fee) that is reinstated.
    use infron_billing::topups::posting::{
        dispute_external_id, refund_external_id, reversal_transaction, topup_transaction, PaidTopup,
    };
    let book_a = ledger::credits_book(&app.pg, a.account)
        .await
        .unwrap()
        .unwrap();
    let book_b = ledger::credits_book(&app.pg, b.account)
        .await
        .unwrap()
        .unwrap();
    let paid = PaidTopup {
        credits_cents: 10_000,
        fee_cents: 535,
    };
    let mut postings = vec![topup_transaction(
        "cs_finance",
        b.account,
        book_b,
        paid,
        Some("pi_finance"),
    )];
    for (external_id, kind, from, to) in [
        (refund_external_id("ch_finance", 2000), "refund", 0, 2000),
        (
            dispute_external_id("dp_finance", true),
            "dispute",
            2000,
            10_535,
        ),
        (
            dispute_external_id("dp_finance", false),
            "dispute_reinstated",
            10_535,
            2000,
        ),
    ] {
        postings.push(
            reversal_transaction(
                external_id,
                kind,
                b.account,
                book_b,
                paid.delta(from, to),
                json!({}),
            )
            .unwrap(),
        );
    }
    postings.push(NewTransaction {
        id: Uuid::now_v7(),
        external_id: "expiry:finance-a".into(),
        kind: "expiry",
        account_id: Some(a.account),
        description: String::new(),
        metadata: json!({}),
        effective_at: chrono::Utc::now(),
        entries: vec![(book_a, dec("1")), (platform::EXPIRED_CREDITS, dec("-1"))],
    });
    for t in postings {
        ledger::post_one(&app.pg, t).await.unwrap();
    }
    let payments: Vec<Decimal> = sqlx::query_scalar(
        "SELECT unnest(ARRAY[sum(topups), sum(credits_purchased), sum(fees_charged), \
                sum(cash_collected), sum(refunds), sum(credits_refunded), sum(fees_refunded), \
                sum(cash_refunded), sum(disputes), sum(credits_disputed), sum(fees_disputed), \
                sum(cash_disputed), sum(reinstatements), sum(credits_reinstated), \
                sum(fees_reinstated), sum(cash_reinstated), sum(net_cash), sum(net_credits)]) \
         FROM finance.daily_payments WHERE account_id = $1",
    )
    .bind(b.account)
    .fetch_all(&app.pg)
    .await
    .unwrap();
    let want: Vec<Decimal> = [
        "1", "100", "5.35", "105.35", // top-up
        "1", "20", "0", "20", // refund: credits first
        "1", "80", "5.35", "85.35", // dispute: the rest of the credits, then the fee
        "1", "80", "5.35", "85.35", // reinstated
        "85.35", "80", // net cash and credits
    ]
    .into_iter()
    .map(dec)
    .collect();
    assert_eq!(payments, want);
    let expired: (Decimal, Decimal) = sqlx::query_as(
        "SELECT sum(credits_expired), sum(expired_credits_revenue) FROM finance.daily_expiries \
         WHERE account_id = $1",
    )
    .bind(a.account)
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(expired, (dec("1"), dec("1")));
    let revenue: Vec<Decimal> = sqlx::query_scalar(
        "SELECT unnest(ARRAY[sum(usage_revenue), sum(topup_fee_revenue), sum(topup_fee_adjustments), \
                sum(expired_credits), sum(net_revenue), sum(cash_in), sum(cash_out)]) \
         FROM finance.daily_revenue",
    )
    .fetch_all(&app.pg)
    .await
    .unwrap();
    assert_eq!(
        revenue,
        vec![
            charged,
            dec("5.35"),
            Decimal::ZERO, // taken by the dispute, given back by the reinstatement
            dec("1"),
            charged + dec("6.35"),
            dec("190.70"),
            dec("105.35"),
        ]
    );
    let total: Decimal = sqlx::query_scalar("SELECT total_liability FROM finance.liabilities")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert_eq!(total, balance_sum + dec("100") - dec("20") - dec("1"));
    let activity_b: (Decimal, Decimal, Decimal, Decimal) = sqlx::query_as(
        "SELECT sum(purchased), sum(refunded), sum(disputed), sum(reinstated) \
         FROM finance.daily_account_activity WHERE account_id = $1",
    )
    .bind(b.account)
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(activity_b, (dec("100"), dec("20"), dec("80"), dec("80")));
    let still_consistent: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM finance.balances WHERE NOT consistent) + \
                (SELECT count(*) FROM finance.platform_books WHERE NOT consistent)",
    )
    .fetch_one(&app.pg)
    .await
    .unwrap();
    assert_eq!(still_consistent, 0);
    // (No ledger_clean() here: the synthetic top-up has no Checkout Session behind it.)
}

/// Runs `sql` as infron_finance inside its own transaction; returns the SQLSTATE on failure.
async fn as_finance(pg: &PgPool, sql: &str) -> Result<(), String> {
    let mut tx = pg.begin().await.unwrap();
    sqlx::query("SET LOCAL ROLE infron_finance")
        .execute(&mut *tx)
        .await
        .unwrap();
    let result = sqlx::raw_sql(sql).execute(&mut *tx).await;
    tx.rollback().await.unwrap();
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) => Err(e.code().map(|c| c.to_string()).unwrap_or_default()),
        Err(e) => panic!("{sql}: {e}"),
    }
}

#[tokio::test]
async fn finance_role_reads_everything_and_writes_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("3").await;
    chat_ok(
        &app,
        &t.key,
        "test/chat",
        json!({"prompt_tokens": 10, "completion_tokens": 5}),
        false,
    )
    .await;
    app.settled().await;

    let can_login: bool =
        sqlx::query_scalar("SELECT rolcanlogin FROM pg_roles WHERE rolname = 'infron_finance'")
            .fetch_one(&app.pg)
            .await
            .unwrap();
    assert!(
        !can_login,
        "the role is NOLOGIN; people get logins that are members of it"
    );

    // Every view and rollup in the finance schema, and the ledger and usage tables, are readable.
    let relations: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'finance' AND c.relkind IN ('r', 'v', 'm') ORDER BY 1",
    )
    .fetch_all(&app.pg)
    .await
    .unwrap();
    assert!(relations.len() >= 17, "{relations:?}");
    for rel in relations.iter().map(String::as_str).chain([
        "public.ledger_accounts",
        "public.ledger_transactions",
        "public.ledger_entries",
        "public.request_logs",
        "public.accounts",
    ]) {
        assert_eq!(
            as_finance(&app.pg, &format!("SELECT * FROM {rel} LIMIT 5")).await,
            Ok(()),
            "SELECT from {rel}"
        );
    }
    for call in [
        "SELECT * FROM finance.usage_daily_from_logs(current_date - 1, current_date + 1)",
        "SELECT * FROM finance.ledger_daily_from_entries(current_date - 1, current_date + 1)",
        "SELECT * FROM finance.usage_rollup_drift(current_date - 1, current_date + 1)",
        "SELECT api_key_id, key_name, key_hint FROM finance.daily_usage_by_key",
        "SELECT id, account_id, name, key_hint, disabled FROM api_keys",
    ] {
        assert_eq!(as_finance(&app.pg, call).await, Ok(()), "{call}");
    }
    let statement = format!(
        "SELECT * FROM finance.account_statement('{}', current_date - 1, current_date + 1)",
        t.account
    );
    assert_eq!(as_finance(&app.pg, &statement).await, Ok(()));

    // Nothing can be written, deleted, created or maintained, and key hashes stay hidden.
    let denied = "42501";
    for write in [
        "INSERT INTO ledger_transactions (id, external_id, kind) VALUES (gen_random_uuid(), 'x', 'grant')",
        "INSERT INTO ledger_entries (transaction_id, ledger_account_id, amount) \
             SELECT id, '00000000-0000-0000-0000-000000000005', 1 FROM ledger_transactions LIMIT 1",
        "UPDATE ledger_accounts SET balance = 1000000",
        "DELETE FROM ledger_entries",
        "DELETE FROM request_logs",
        "UPDATE request_logs SET cost = 0",
        "INSERT INTO accounts (id, name) VALUES (gen_random_uuid(), 'intruder')",
        "UPDATE api_keys SET disabled = true",
        "TRUNCATE request_logs",
        "INSERT INTO finance.usage_daily SELECT * FROM finance.usage_daily",
        "DELETE FROM finance.ledger_daily",
        "UPDATE finance.usage_daily SET cost = 0",
        "SELECT * FROM finance.compact_rollups()",
        "SELECT finance.rebuild_usage_daily(current_date, current_date)",
        "SELECT finance.rebuild_ledger_daily(current_date, current_date)",
        "CREATE TABLE finance.mine (x int)",
        "CREATE TABLE public.mine (x int)",
        "CREATE VIEW finance.mine AS SELECT 1",
        "SELECT key_hash FROM api_keys",
    ] {
        assert_eq!(
            as_finance(&app.pg, write).await,
            Err(denied.to_string()),
            "{write}"
        );
    }
    // And the catalog agrees: no write privilege on any table in either schema.
    let writable: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname IN ('public', 'finance') AND c.relkind IN ('r', 'p', 'v', 'm') \
           AND has_table_privilege('infron_finance', c.oid, \
                                   'INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')",
    )
    .fetch_all(&app.pg)
    .await
    .unwrap();
    assert!(writable.is_empty(), "{writable:?}");
    let total: Decimal = sqlx::query_scalar("SELECT total_liability FROM finance.liabilities")
        .fetch_one(&app.pg)
        .await
        .unwrap();
    assert_eq!(total, app.balance(t.account).await, "nothing was changed");
}
