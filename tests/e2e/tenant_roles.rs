//! Every tenant route × every kind of caller × own and foreign ids, as one table, including the
//! escalation attempts: a member creating a key for another member, changing their own role,
//! inviting an owner, a management key calling a model, a billing member creating keys.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;
use crate::tenant_helpers::*;

enum Who {
    Session(Browser),
    Key(String),
}

struct Caller {
    name: &'static str,
    who: Who,
}

impl Caller {
    async fn send(&self, app: &TestApp, method: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = match &self.who {
            Who::Session(b) => match method {
                "GET" => b.get(path),
                "POST" => b.post(path, body),
                "PATCH" => b.patch(path, body),
                "DELETE" => b.delete(path),
                _ => unreachable!(),
            },
            Who::Key(k) => {
                let url = format!("{}{path}", app.base);
                let r = match method {
                    "GET" => app.client.get(url),
                    "POST" => app.client.post(url).json(body),
                    "PATCH" => app.client.patch(url).json(body),
                    "DELETE" => app.client.delete(url),
                    _ => unreachable!(),
                };
                r.bearer_auth(k)
            }
        };
        status_of(r).await
    }
}

/// The columns of the table.
const CALLERS: [&str; 7] = [
    "owner",
    "admin",
    "member",
    "billing",
    "mgmt",
    "mgmt_read",
    "inference",
];

async fn generation_of(app: &TestApp, key: &str) -> String {
    let res = app.post_chat(key, &chat_body("test/chat", None)).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_route_every_role_own_and_foreign_ids() {
    let t = spawn_tenant_app(&[]).await;
    let app = &t.app;

    // Account A and its people.
    let (owner_id, _, owner) = member(app, None).await;
    let (_, me) = status_of(owner.get("/api/v1/me")).await;
    let a: Uuid = me["data"]["account_id"].as_str().unwrap().parse().unwrap();
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        a,
        "10".parse().unwrap(),
        "t",
        "grant:a".into(),
    )
    .await
    .unwrap();
    let (admin_id, _, admin) = member(app, Some((a, "admin"))).await;
    let (member_id, _, mem) = member(app, Some((a, "member"))).await;
    let (billing_id, _, billing) = member(app, Some((a, "billing"))).await;
    let (member_key, member_secret) = api_key(&mem, json!({ "name": "member's" })).await;
    let (admin_key, admin_secret) = api_key(&admin, json!({ "name": "admin's" })).await;
    let (mgmt_key, mgmt) = api_key(&owner, json!({ "name": "mgmt", "kind": "management" })).await;
    let (_, mgmt_read) = api_key(&owner, json!({ "name": "ro", "kind": "management_read" })).await;
    let (_, inference) = api_key(&owner, json!({ "name": "owner's" })).await;
    let gen_admin = generation_of(app, &admin_secret).await;
    let gen_member = generation_of(app, &member_secret).await;

    // Account B: everything foreign.
    let (_, _, owner_b) = member(app, None).await;
    let (_, me_b) = status_of(owner_b.get("/api/v1/me")).await;
    let b: Uuid = me_b["data"]["account_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    infron_billing::grants::grant(
        &app.pg,
        &app.hot,
        b,
        "1".parse().unwrap(),
        "t",
        "grant:b".into(),
    )
    .await
    .unwrap();
    let (member_b, _, _) = member(app, Some((b, "member"))).await;
    let (key_b, secret_b) = api_key(&owner_b, json!({ "name": "b's" })).await;
    let gen_b = generation_of(app, &secret_b).await;
    let (_, inv) = status_of(owner_b.post(
        "/api/v1/invitations",
        &json!({ "email": "someone@example.com", "role": "member" }),
    ))
    .await;
    let invitation_b = inv["data"]["id"].as_str().unwrap().to_string();
    app.settled().await;

    let callers = [
        Caller {
            name: "owner",
            who: Who::Session(owner),
        },
        Caller {
            name: "admin",
            who: Who::Session(admin),
        },
        Caller {
            name: "member",
            who: Who::Session(mem),
        },
        Caller {
            name: "billing",
            who: Who::Session(billing),
        },
        Caller {
            name: "mgmt",
            who: Who::Key(mgmt.clone()),
        },
        Caller {
            name: "mgmt_read",
            who: Who::Key(mgmt_read.clone()),
        },
        Caller {
            name: "inference",
            who: Who::Key(inference.clone()),
        },
    ];
    assert_eq!(callers.iter().map(|c| c.name).collect::<Vec<_>>(), CALLERS);

    let n = json!({});
    let rows: Vec<(&str, String, Value, [u16; 7])> = vec![
        (
            "GET",
            "/api/v1/keys".into(),
            n.clone(),
            [200, 200, 200, 403, 200, 200, 403],
        ),
        (
            "GET",
            format!("/api/v1/keys/{member_key}"),
            n.clone(),
            [200, 200, 200, 403, 200, 200, 403],
        ),
        (
            "GET",
            format!("/api/v1/keys/{admin_key}"),
            n.clone(),
            [200, 200, 404, 403, 200, 200, 403],
        ),
        (
            "GET",
            format!("/api/v1/keys/{mgmt_key}"),
            n.clone(),
            [200, 200, 404, 403, 404, 404, 403],
        ),
        (
            "GET",
            format!("/api/v1/keys/{key_b}"),
            n.clone(),
            [404, 404, 404, 403, 404, 404, 403],
        ),
        (
            "GET",
            format!("/api/v1/keys/{}", "0".repeat(64)),
            n.clone(),
            [404, 404, 404, 403, 404, 404, 403],
        ),
        (
            "GET",
            "/api/v1/keys?kind=management".into(),
            n.clone(),
            [200, 200, 403, 403, 403, 403, 403],
        ),
        (
            "PATCH",
            format!("/api/v1/keys/{member_key}"),
            json!({"name": "renamed"}),
            [200, 200, 200, 403, 200, 403, 403],
        ),
        (
            "PATCH",
            format!("/api/v1/keys/{admin_key}"),
            json!({"name": "renamed"}),
            [200, 200, 404, 403, 200, 403, 403],
        ),
        (
            "PATCH",
            format!("/api/v1/keys/{key_b}"),
            json!({"disabled": true}),
            [404, 404, 404, 403, 404, 404, 403],
        ),
        (
            "DELETE",
            format!("/api/v1/keys/{key_b}"),
            n.clone(),
            [404, 404, 404, 403, 404, 404, 403],
        ),
        (
            "POST",
            "/api/v1/keys".into(),
            json!({"name": "own"}),
            [201, 201, 201, 403, 201, 403, 403],
        ),
        // A key for another member: members and billing may not.
        (
            "POST",
            "/api/v1/keys".into(),
            json!({"name": "for admin", "creator_user_id": admin_id}),
            [201, 201, 403, 403, 201, 403, 403],
        ),
        (
            "POST",
            "/api/v1/keys".into(),
            json!({"name": "for a stranger", "creator_user_id": member_b}),
            [404, 404, 403, 403, 404, 403, 403],
        ),
        (
            "POST",
            "/api/v1/keys".into(),
            json!({"name": "mk", "kind": "management"}),
            [201, 201, 403, 403, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/activity".into(),
            n.clone(),
            [200, 200, 200, 200, 200, 200, 403],
        ),
        (
            "GET",
            format!("/api/v1/activity?api_key_hash={admin_key}"),
            n.clone(),
            [200, 200, 404, 200, 200, 200, 403],
        ),
        (
            "GET",
            format!("/api/v1/activity?api_key_hash={key_b}"),
            n.clone(),
            [404, 404, 404, 404, 404, 404, 403],
        ),
        (
            "GET",
            format!("/api/v1/activity?user_id={admin_id}"),
            n.clone(),
            [200, 200, 404, 200, 200, 200, 403],
        ),
        (
            "GET",
            "/api/v1/logs".into(),
            n.clone(),
            [200, 200, 200, 200, 200, 200, 403],
        ),
        (
            "GET",
            format!("/api/v1/logs?api_key_hash={key_b}"),
            n.clone(),
            [404, 404, 404, 404, 404, 404, 403],
        ),
        (
            "GET",
            format!("/api/v1/generation?id={gen_admin}"),
            n.clone(),
            [200, 200, 404, 200, 200, 200, 200],
        ),
        (
            "GET",
            format!("/api/v1/generation?id={gen_member}"),
            n.clone(),
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            format!("/api/v1/generation?id={gen_b}"),
            n.clone(),
            [404, 404, 404, 404, 404, 404, 404],
        ),
        (
            "GET",
            "/api/v1/credits".into(),
            n.clone(),
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/account".into(),
            n.clone(),
            [200, 200, 200, 200, 200, 200, 403],
        ),
        (
            "PATCH",
            "/api/v1/account".into(),
            json!({"allow_training": false}),
            [200, 200, 403, 403, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/members".into(),
            n.clone(),
            [200, 200, 403, 403, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/invitations".into(),
            n.clone(),
            [200, 200, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/invitations".into(),
            json!({"email": "new@example.com", "role": "member"}),
            [201, 201, 403, 403, 403, 403, 403],
        ),
        // Nobody is invited as owner, not even by the owner.
        (
            "POST",
            "/api/v1/invitations".into(),
            json!({"email": "boss@example.com", "role": "owner"}),
            [403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "DELETE",
            format!("/api/v1/invitations/{invitation_b}"),
            n.clone(),
            [404, 404, 403, 403, 403, 403, 403],
        ),
        (
            "PATCH",
            format!("/api/v1/members/{member_b}"),
            json!({"role": "admin"}),
            [404, 404, 403, 403, 403, 403, 403],
        ),
        (
            "DELETE",
            format!("/api/v1/members/{member_b}"),
            n.clone(),
            [404, 404, 403, 403, 403, 403, 403],
        ),
        // Promotions: the owner may make the billing member an admin and back.
        (
            "PATCH",
            format!("/api/v1/members/{billing_id}"),
            json!({"role": "billing"}),
            [200, 200, 403, 403, 403, 403, 403],
        ),
        (
            "PATCH",
            format!("/api/v1/members/{owner_id}"),
            json!({"role": "member"}),
            [403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "PATCH",
            format!("/api/v1/members/{admin_id}"),
            json!({"role": "owner"}),
            [403, 403, 403, 403, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/audit".into(),
            n.clone(),
            [200, 403, 403, 403, 403, 403, 403],
        ),
        (
            "POST",
            "/api/v1/account/transfer".into(),
            json!({"user_id": member_b}),
            [404, 403, 403, 403, 403, 403, 403],
        ),
        (
            "GET",
            "/api/v1/operator/accounts".into(),
            n.clone(),
            [404, 404, 404, 404, 401, 401, 401],
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &rows {
        for (caller, want) in callers.iter().zip(expected) {
            let (got, v) = caller.send(app, method, path, body).await;
            if got != *want {
                wrong.push(format!(
                    "{method} {path} as {}: expected {want}, got {got}: {v}",
                    caller.name
                ));
            }
        }
    }

    // Changing one's own role: refused for everyone (for key callers there is no "own").
    for caller in &callers[..4] {
        let me = match caller.name {
            "owner" => owner_id,
            "admin" => admin_id,
            "member" => member_id,
            _ => billing_id,
        };
        let (got, v) = caller
            .send(
                app,
                "PATCH",
                &format!("/api/v1/members/{me}"),
                &json!({"role": "admin"}),
            )
            .await;
        if got != 403 {
            wrong.push(format!(
                "{} changing own role: expected 403, got {got}: {v}",
                caller.name
            ));
        }
    }

    // Destructive operations, each on a fresh target so earlier rows do not decide later ones.
    let a_owner = match &callers[0].who {
        Who::Session(b) => b,
        Who::Key(_) => unreachable!(),
    };
    for (caller, want) in callers.iter().zip([200, 200, 200, 403, 200, 403, 403]) {
        let (h, _) = api_key(
            a_owner,
            json!({"name": "doomed", "creator_user_id": member_id}),
        )
        .await;
        let (got, v) = caller
            .send(app, "DELETE", &format!("/api/v1/keys/{h}"), &json!({}))
            .await;
        if got != want {
            wrong.push(format!(
                "delete a member's key as {}: expected {want}, got {got}: {v}",
                caller.name
            ));
        }
    }
    for (caller, want) in callers.iter().zip([200, 200, 404, 403, 200, 403, 403]) {
        let (h, _) = api_key(
            a_owner,
            json!({"name": "doomed", "creator_user_id": admin_id}),
        )
        .await;
        let (got, v) = caller
            .send(app, "DELETE", &format!("/api/v1/keys/{h}"), &json!({}))
            .await;
        if got != want {
            wrong.push(format!(
                "delete an admin's key as {}: expected {want}, got {got}: {v}",
                caller.name
            ));
        }
    }
    for role in ["member", "admin"] {
        let expected = if role == "member" {
            [200, 200, 403, 403, 403, 403, 403]
        } else {
            [200, 403, 403, 403, 403, 403, 403]
        };
        for (caller, want) in callers.iter().zip(expected) {
            let (target, _, _) = member(app, Some((a, role))).await;
            let (got, v) = caller
                .send(
                    app,
                    "DELETE",
                    &format!("/api/v1/members/{target}"),
                    &json!({}),
                )
                .await;
            if got != want {
                wrong.push(format!(
                    "remove a {role} as {}: expected {want}, got {got}: {v}",
                    caller.name
                ));
            }
        }
    }
    // Model routes: management keys are refused, inference keys served.
    for (key, want) in [(&mgmt, 403), (&mgmt_read, 403), (&inference, 200)] {
        let got = app
            .post_chat(key, &chat_body("test/chat", None))
            .await
            .status()
            .as_u16();
        if got != want {
            wrong.push(format!("chat with a {want}-expected key: got {got}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} mismatches:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // A member's listing, activity and logs hold their own keys only.
    let mem = match &callers[2].who {
        Who::Session(b) => b,
        Who::Key(_) => unreachable!(),
    };
    let (_, keys) = status_of(mem.get("/api/v1/keys")).await;
    assert!(
        keys["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["creator_user_id"] == member_id.to_string()),
        "{keys}"
    );
    let (_, logs) = status_of(mem.get("/api/v1/logs")).await;
    let ids: Vec<&str> = logs["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![gen_member.as_str()], "{logs}");
    let (_, act) = status_of(mem.get("/api/v1/activity")).await;
    assert!(
        act["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["api_key_hash"] == member_key.as_str()),
        "{act}"
    );
    // Account B's audit log holds its own entries only.
    let (_, audit_b) = status_of(owner_b.get("/api/v1/audit")).await;
    let entries = audit_b["data"].as_array().unwrap();
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|e| e["account_id"] == b.to_string()),
        "{audit_b}"
    );
}
