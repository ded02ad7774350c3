//! Google Vertex AI: `POST /v1/projects/{project}/locations/{location}/publishers/{publisher}/
//! models/{model}:{method}`, authenticated with an access token from the token endpoint.
//! Publisher `google` answers `generateContent` / `streamGenerateContent` as Gemini does;
//! publisher `anthropic` answers `rawPredict` / `streamRawPredict` as the Messages API does,
//! from a body without `model` and with `anthropic_version: "vertex-2023-10-16"`.

use crate::router::{percent_decode, Ctx, Dialect, Provider};
use crate::server::Outcome;
use crate::{anthropic, gemini};

pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

pub(crate) async fn route(mut ctx: Ctx) -> Outcome {
    let path = ctx.path().to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // v1 projects P locations L publishers PUB models MODEL:METHOD
    let [_, "projects", _, "locations", _, "publishers", publisher, "models", rest] =
        segments.as_slice()
    else {
        return ctx.error(
            Provider::Gemini,
            404,
            &format!("Unknown Vertex path {path}."),
        );
    };
    let Some((model, method)) = rest.rsplit_once(':') else {
        return ctx.error(Provider::Gemini, 404, "Missing method.");
    };
    let model = percent_decode(model);
    ctx.dialect = Dialect::Vertex;
    match (*publisher, method) {
        ("google", "generateContent") => gemini::generate(ctx, model, false).await,
        ("google", "streamGenerateContent") => gemini::generate(ctx, model, true).await,
        ("anthropic", "rawPredict") => {
            ctx.model_override = Some(model);
            anthropic::messages(ctx).await
        }
        ("anthropic", "streamRawPredict") => {
            ctx.model_override = Some(model);
            anthropic::messages(ctx).await
        }
        (p, m) => ctx.error(
            Provider::Gemini,
            404,
            &format!("Publisher {p} has no method {m} (mock provider)."),
        ),
    }
}
