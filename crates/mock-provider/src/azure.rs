//! Azure OpenAI: `POST /openai/deployments/{deployment}/chat/completions?api-version=V` and
//! `.../embeddings`, with the key in the `api-key` header. Answers are OpenAI's plus Azure's
//! content-filter annotations: `prompt_filter_results` (in the response, or a first stream
//! chunk with no choices) and `content_filter_results` on each choice. A behaviour with
//! `finish_reason: "content_filter"` is a filtered completion (`filtered: true` on `violence`);
//! `prompt_filtered: true` is Azure's 400 for a refused prompt.

use crate::ojson::{obj, J, NULL};
use crate::router::{percent_decode, Ctx, Dialect, Provider};
use crate::server::Outcome;
use crate::{openai, openai_extra, util};

pub(crate) async fn route(mut ctx: Ctx) -> Outcome {
    let path = ctx.path().to_string();
    let rest = path.trim_start_matches("/openai/deployments/");
    let Some((deployment, operation)) = rest.split_once('/') else {
        return ctx.error(Provider::OpenAi, 404, "Resource not found");
    };
    if ctx.query("api-version").is_none_or(|v| v.is_empty()) {
        return ctx.error(
            Provider::OpenAi,
            404,
            "Resource not found (api-version query parameter missing)",
        );
    }
    ctx.dialect = Dialect::Azure;
    ctx.model_override = Some(percent_decode(deployment));
    match operation {
        "chat/completions" => openai::chat(ctx).await,
        "embeddings" => openai_extra::embeddings(ctx).await,
        other => ctx.error(
            Provider::OpenAi,
            404,
            &format!("Operation {other} is not supported (mock provider)."),
        ),
    }
}

/// `None` when the `api-key` header carries the expected key (or none is configured).
pub(crate) fn check_key(ctx: &Ctx) -> Option<Outcome> {
    let expected = ctx.shared.config.expected_api_key.as_deref()?;
    if ctx.header("api-key") == Some(expected) {
        return None;
    }
    Some(ctx.error(
        Provider::OpenAi,
        401,
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
    ))
}

fn category(filtered: bool, severity: &str) -> J {
    obj! {"filtered": filtered, "severity": severity}
}

/// Per-category results; `violence` is the one that filters.
pub(crate) fn content_filter_results(filtered: bool) -> J {
    obj! {
        "hate": category(false, "safe"),
        "self_harm": category(false, "safe"),
        "sexual": category(false, "safe"),
        "violence": category(filtered, if filtered { "high" } else { "safe" }),
    }
}

pub(crate) fn prompt_filter_results() -> J {
    J::Arr(vec![obj! {
        "prompt_index": 0u64,
        "content_filter_results": content_filter_results(false),
    }])
}

/// Azure's answer to a prompt its filter refuses.
pub(crate) fn prompt_filtered(ctx: &Ctx) -> Outcome {
    let mut results = content_filter_results(false);
    results.set("violence", category(true, "high"));
    let body = obj! {
        "error": obj! {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.",
            "type": NULL,
            "param": "prompt",
            "code": "content_filter",
            "status": 400u64,
            "innererror": obj! {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": results,
            },
        }
    };
    ctx.json(Provider::OpenAi, 400, &body, None, &util::random_id("req_"))
}
