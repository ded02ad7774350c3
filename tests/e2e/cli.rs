use std::process::Command;

use crate::helpers::*;

fn infron(app_db: &str, prefix: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_infron"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app_db)
        .env("REDIS_URL", redis_url())
        .env("INFRON_KEY_SECRET", "cli-test-secret-0123456789abcdef0123")
        .env("INFRON_REDIS_PREFIX", prefix)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("infron runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_cli_creates_accounts_keys_and_grants() {
    let db = fresh_database().await;
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let (ok, out, err) = infron(&db, &prefix, &["migrate"]);
    assert!(ok, "{err}");
    assert!(out.contains("migrations applied"));

    let (ok, out, err) = infron(&db, &prefix, &["accounts", "create", "--name", "Acme"]);
    assert!(ok, "{err}");
    let account = out.trim().to_string();
    uuid::Uuid::parse_str(&account).unwrap();

    let (ok, out, err) = infron(
        &db,
        &prefix,
        &["keys", "create", "--account", &account, "--name", "ci"],
    );
    assert!(ok, "{err}");
    let key = out.trim();
    assert!(
        infron_api::api_keys::ApiKey::parse(key).is_some(),
        "printed a valid key: {key}"
    );

    let (ok, out, err) = infron(
        &db,
        &prefix,
        &[
            "credits",
            "grant",
            "--account",
            &account,
            "--amount",
            "12.50",
            "--reason",
            "welcome",
            "--idempotency-key",
            "w1",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("balance $12.5"), "{out}");
    let (ok, out, _) = infron(
        &db,
        &prefix,
        &[
            "credits",
            "grant",
            "--account",
            &account,
            "--amount",
            "12.50",
            "--reason",
            "welcome",
            "--idempotency-key",
            "w1",
        ],
    );
    assert!(ok && out.contains("already posted"), "{out}");

    let (ok, out, err) = infron(&db, &prefix, &["accounts", "show", &account]);
    assert!(ok, "{err}");
    assert!(
        out.contains("balance  $12.5") && out.contains("Acme") && out.contains("keys     1"),
        "{out}"
    );
    assert!(
        !out.contains(&key[12..30]),
        "the secret is never shown again"
    );

    let (ok, out, _) = infron(&db, &prefix, &["ledger", "verify"]);
    assert!(ok, "{out}");

    // Rate limits: a key's own, the account's and its keys' defaults; "none" clears.
    let pg = sqlx::PgPool::connect(&db).await.unwrap();
    let key_id: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM api_keys WHERE account_id = $1::uuid")
            .bind(&account)
            .fetch_one(&pg)
            .await
            .unwrap();
    let kid = key_id.to_string();
    let (ok, out, err) = infron(
        &db,
        &prefix,
        &[
            "keys",
            "set-rate-limit",
            &kid,
            "--rpm",
            "30",
            "--tpm",
            "5000",
        ],
    );
    assert!(ok && out.contains("rpm 30 tpm 5000"), "{out}{err}");
    let (ok, out, err) = infron(
        &db,
        &prefix,
        &["keys", "set-rate-limit", &kid, "--tpm", "none"],
    );
    assert!(ok && out.contains("rpm 30 tpm none"), "{out}{err}");
    let (ok, _, err) = infron(
        &db,
        &prefix,
        &["keys", "set-rate-limit", &kid, "--rpm", "0"],
    );
    assert!(!ok && err.contains("--rpm"), "{err}");
    // Bounded as the management API bounds it.
    let (ok, _, err) = infron(
        &db,
        &prefix,
        &["keys", "set-rate-limit", &kid, "--tpm", "1000000001"],
    );
    assert!(!ok && err.contains("from 1 to 1000000000"), "{err}");
    let (ok, out, err) = infron(
        &db,
        &prefix,
        &[
            "accounts",
            "set-rate-limit",
            &account,
            "--rpm",
            "100",
            "--default-key-tpm",
            "9000",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("rpm 100 tpm none default key rpm none default key tpm 9000"),
        "{out}"
    );
    let row = infron_store::accounts::get(&pg, account.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.rate_limit_rpm, row.default_key_tpm),
        (Some(100), Some(9000))
    );
    let k = infron_store::keys::get(&pg, key_id).await.unwrap().unwrap();
    assert_eq!((k.rate_limit_rpm, k.rate_limit_tpm), (Some(30), None));
    pg.close().await;

    // Clear errors and non-zero exits.
    let (ok, _, err) = infron(
        &db,
        &prefix,
        &[
            "credits",
            "grant",
            "--account",
            &account,
            "--amount",
            "ten",
            "--reason",
            "x",
        ],
    );
    assert!(!ok && err.contains("--amount"), "{err}");
    let (ok, _, err) = infron(
        &db,
        &prefix,
        &["accounts", "show", "00000000-0000-0000-0000-000000000009"],
    );
    assert!(!ok && err.contains("no account"), "{err}");
    let (ok, _, err) = infron("", &prefix, &["migrate"]);
    assert!(!ok && err.contains("DATABASE_URL"), "{err}");
    let (ok, out, _) = infron(&db, &prefix, &["keys", "--help"]);
    assert!(ok && out.contains("create"));
}

/// `infron users add` reading the password from stdin.
fn add_user(db: &str, prefix: &str, args: &[&str], stdin: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_infron"))
        .args(["users", "add"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db)
        .env("REDIS_URL", redis_url())
        .env("INFRON_KEY_SECRET", "cli-test-secret-0123456789abcdef0123")
        .env("INFRON_REDIS_PREFIX", prefix)
        .current_dir(std::env::temp_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("infron runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn admin_cli_adds_users_who_can_sign_in_to_accounts() {
    let db = fresh_database().await;
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    assert!(infron(&db, &prefix, &["migrate"]).0);
    let (ok, out, err) = infron(&db, &prefix, &["accounts", "create", "--name", "Demo"]);
    assert!(ok, "{err}");
    let account = out.trim().to_string();
    let (ok, err) = add_user(
        &db,
        &prefix,
        &[
            "--email",
            "Demo@Example.com",
            "--account",
            &account,
            "--role",
            "owner",
        ],
        "a long demo password\n",
    );
    assert!(ok, "{err}");
    // Again: nothing changes (the password read is not used for an existing user).
    let (ok, err) = add_user(
        &db,
        &prefix,
        &[
            "--email",
            "demo@example.com",
            "--account",
            &account,
            "--role",
            "owner",
        ],
        "",
    );
    assert!(ok, "{err}");
    let pg = infron_store::connect_postgres(&db, 2).await.unwrap();
    let user = infron_store::users::user_by_email(&pg, "demo@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(user.email_verified_at.is_some());
    assert!(infron_accounts::password::verify(
        &infron_accounts::Password::offered("a long demo password"),
        Some(&user.password_hash)
    )
    .await
    .unwrap());
    let account_id = uuid::Uuid::parse_str(&account).unwrap();
    let role = infron_store::members::role_of(&pg, account_id, user.id)
        .await
        .unwrap()
        .unwrap()
        .0;
    assert_eq!(role, "owner");
    // A second owner, a short password, an unknown account or role are refused.
    let (ok, err) = add_user(
        &db,
        &prefix,
        &[
            "--email",
            "other@example.com",
            "--account",
            &account,
            "--role",
            "owner",
        ],
        "another long password\n",
    );
    assert!(!ok && err.contains("cannot make"), "{err}");
    let (ok, err) = add_user(
        &db,
        &prefix,
        &["--email", "short@example.com", "--account", &account],
        "short\n",
    );
    assert!(!ok && err.contains("at least 10"), "{err}");
    let (ok, err) = add_user(
        &db,
        &prefix,
        &[
            "--email",
            "x@example.com",
            "--account",
            &uuid::Uuid::new_v4().to_string(),
        ],
        "a long demo password\n",
    );
    assert!(!ok && err.contains("no account"), "{err}");
    let (ok, err) = add_user(
        &db,
        &prefix,
        &[
            "--email",
            "x@example.com",
            "--account",
            &account,
            "--role",
            "root",
        ],
        "a long demo password\n",
    );
    assert!(!ok && err.contains("--role"), "{err}");
}
