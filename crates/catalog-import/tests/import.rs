//! The importer end to end on small fixtures: merging providers' offers into one model, exact
//! prices, rejected float artefacts, the overrides file winning, OpenRouter ids, and the report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use infron_catalog_import::{import, Inputs, Outcome, Source};
use infron_router::Catalog;

const LITELLM: &str = include_str!("fixtures/litellm-sample.json");
const OPENROUTER: &str = include_str!("fixtures/openrouter-models.json");

const OVERRIDES: &str = r#"
[import]
skip = ["audio"]

[[providers]]
name = "openai"
display_name = "OpenAI"
wire = "openai"
base_url = "https://api.openai.com/v1"
api_key_env = "OPENAI_API_KEY"
litellm = ["openai"]
first_party = ["openai"]
data_policy = { training = false, retains_prompts = true, retention_days = 30 }

[[providers]]
name = "azure"
display_name = "Azure OpenAI"
wire = "azure"
base_url = "${AZURE_OPENAI_ENDPOINT:-https://unset.invalid}"
api_key_env = "AZURE_OPENAI_API_KEY"
api_version = "2024-10-21"
litellm = ["azure"]
data_policy = { training = false, retains_prompts = true }

[[providers]]
name = "anthropic"
display_name = "Anthropic"
wire = "anthropic"
base_url = "https://api.anthropic.com"
api_key_env = "ANTHROPIC_API_KEY"
litellm = ["anthropic"]
first_party = ["anthropic"]
data_policy = { training = false, retains_prompts = true }

[[providers]]
name = "amazon-bedrock"
display_name = "Amazon Bedrock"
wire = "bedrock"
base_url = "https://bedrock-runtime.us-east-1.amazonaws.com"
region = "us-east-1"
api_key_env = "AWS_SECRET_ACCESS_KEY"
access_key_id_env = "AWS_ACCESS_KEY_ID"
litellm = ["bedrock", "bedrock_converse"]
data_policy = { training = false, retains_prompts = false }

[[providers]]
name = "google-vertex"
display_name = "Google Vertex AI"
wire = "vertex"
base_url = "https://us-east5-aiplatform.googleapis.com"
region = "us-east5"
api_key_env = "GOOGLE_VERTEX_CREDENTIALS"
litellm = ["vertex_ai-anthropic_models"]
data_policy = { training = false, retains_prompts = true }

[[providers]]
name = "groq"
display_name = "Groq"
wire = "openai"
base_url = "https://api.groq.com/openai/v1"
api_key_env = "GROQ_API_KEY"
litellm = ["groq"]
data_policy = { training = false, retains_prompts = false }

[[providers]]
name = "together"
display_name = "Together AI"
wire = "openai"
base_url = "https://api.together.xyz/v1"
api_key_env = "TOGETHER_API_KEY"
litellm = ["together_ai"]
data_policy = { training = false, retains_prompts = true }

[canonical]
"groq:llama-3.3-70b-versatile" = "meta-llama/llama-3.3-70b-instruct"

[[models]]
id = "meta-llama/llama-3.3-70b-instruct"
aliases = ["llama-3.3-70b-instruct"]
[[models.endpoints]]
provider = "together"
upstream_model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
source = "a negotiated price, for the test"
pricing = { prompt = "0.0000009", completion = "0.0000009" }

[[models]]
id = "openai/gpt-4o-2024-05-13"
remove = true
"#;

fn run(previous: Option<&str>, openrouter: bool) -> Outcome {
    import(&Inputs {
        litellm: Some(Source {
            label: "litellm-sample.json",
            text: LITELLM,
        }),
        openrouter: openrouter.then_some(Source {
            label: "openrouter-models.json",
            text: OPENROUTER,
        }),
        overrides: Source {
            label: "overrides.toml",
            text: OVERRIDES,
        },
        previous,
    })
    .expect("import succeeds")
}

fn catalog(text: &str) -> Catalog {
    Catalog::parse(text, "generated", &|_| None).expect("the output loads")
}

#[test]
fn one_model_several_providers_with_exact_prices_and_provider_ids_as_aliases() {
    let out = run(None, false);
    let c = catalog(&out.catalog);

    // Claude 3.5 Sonnet (June 2024) from Vertex and Bedrock is one model; the Vertex `@` id and
    // the dated id both resolve to it.
    let sonnet = c
        .model("claude-3-5-sonnet@20240620")
        .expect("vertex id resolves");
    assert_eq!(sonnet.id, "anthropic/claude-3.5-sonnet");
    assert_eq!(c.model("claude-3-5-sonnet-20240620").unwrap().id, sonnet.id);
    assert_eq!(
        c.model("anthropic.claude-3-5-sonnet-20240620-v1:0")
            .unwrap()
            .id,
        sonnet.id
    );
    let providers: Vec<&str> = sonnet
        .endpoints
        .iter()
        .map(|e| e.provider.name.as_str())
        .collect();
    assert_eq!(providers, ["amazon-bedrock", "google-vertex"]);
    // The in-region Bedrock id, not the dearer EU inference profile.
    assert_eq!(
        sonnet.endpoints[0].upstream_model,
        "anthropic.claude-3-5-sonnet-20240620-v1:0"
    );
    assert_eq!(
        sonnet.endpoints[0].prices.prompt.decimal().to_string(),
        "0.000003"
    );
    assert_eq!(sonnet.endpoints[0].max_output_tokens, 4096);
    assert_eq!(sonnet.endpoints[1].max_output_tokens, 8192);

    // Llama 3.3 70B: Groq's nickname, Together's Turbo id and Bedrock's id are one model.
    let llama = c.model("llama-3.3-70b-versatile").unwrap();
    assert_eq!(llama.id, "meta-llama/llama-3.3-70b-instruct");
    assert_eq!(llama.endpoints.len(), 3);

    // Exact decimals from exponent notation: 1.5e-05 is 0.000015, never 0.000015000000000000001.
    assert!(out.catalog.contains("completion = \"0.000015\""));
    assert!(out.catalog.contains("input_cache_write = \"0.00000375\""));
    assert!(!out.catalog.contains('e') || !out.catalog.contains("e-0"));

    // Several snapshot dates: each is a model, the undated id is its own (moving) model.
    assert_eq!(c.model("gpt-4o").unwrap().id, "openai/gpt-4o");
    let snapshot = c.model("gpt-4o-2024-08-06").unwrap();
    assert_eq!(snapshot.id, "openai/gpt-4o-2024-08-06");
    let names: Vec<&str> = snapshot
        .endpoints
        .iter()
        .map(|e| e.provider.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["openai", "azure"],
        "the EU data-zone deployment is not imported"
    );

    // Skipped and unknown entries stay out; embeddings come in with a zero completion price.
    assert!(c.model("gpt-4o-audio-preview").is_none());
    assert!(c.model("command-r").is_none());
    let embed = c.model("text-embedding-3-small").unwrap();
    assert_eq!(embed.kind, infron_router::catalog::ModelKind::Embedding);
    assert!(embed.endpoints[0].prices.completion.is_zero());
}

#[test]
fn float_artefacts_finer_than_twelve_decimals_are_rejected_and_reported() {
    let out = run(None, false);
    let (key, reason) = out
        .report
        .rejected
        .iter()
        .find(|(k, _)| k.contains("Qwen2.5-7B"))
        .expect("reported");
    assert!(key.starts_with("together_ai/"));
    assert!(reason.contains("more than 12 decimals"), "{reason}");
    assert!(!out.catalog.contains("Qwen2.5-7B"));
}

#[test]
fn overrides_always_win() {
    let out = run(None, false);
    let c = catalog(&out.catalog);
    let llama = c.model("meta-llama/llama-3.3-70b-instruct").unwrap();
    let together = llama
        .endpoints
        .iter()
        .find(|e| e.provider.name == "together")
        .unwrap();
    assert_eq!(together.prices.prompt.decimal().to_string(), "0.0000009");
    assert!(out.catalog.contains("# a negotiated price, for the test"));
    assert_eq!(c.model("llama-3.3-70b-instruct").unwrap().id, llama.id);
    assert!(
        c.model("openai/gpt-4o-2024-05-13").is_none(),
        "removed by a patch"
    );
    // Provider settings and data policies are the overrides file's.
    let bedrock = c
        .providers
        .iter()
        .find(|p| p.name == "amazon-bedrock")
        .unwrap();
    assert_eq!(bedrock.region.as_deref(), Some("us-east-1"));
    assert!(!bedrock.data_policy.retains_prompts);
}

#[test]
fn openrouter_ids_names_and_descriptions_are_adopted() {
    let out = run(None, true);
    let c = catalog(&out.catalog);
    let sonnet = c.model("claude-3-5-sonnet@20240620").unwrap();
    // The imported id had no date (one snapshot); OpenRouter's id keeps it, and the old id
    // stays an alias.
    assert_eq!(sonnet.id, "anthropic/claude-3.5-sonnet-20240620");
    assert_eq!(
        c.model("anthropic/claude-3.5-sonnet").unwrap().id,
        sonnet.id
    );
    assert_eq!(sonnet.name, "Anthropic: Claude 3.5 Sonnet (2024-06-20)");
    assert!(sonnet.description.as_deref().unwrap().contains("June 2024"));
    let llama = c.model("meta-llama/llama-3.3-70b-instruct").unwrap();
    assert_eq!(llama.name, "Meta: Llama 3.3 70B Instruct");
    assert!(c.model("x-ai/grok-unknown").is_none(), "nothing prices it");
    assert_eq!(
        out.report.renamed,
        [(
            "anthropic/claude-3.5-sonnet".to_string(),
            "anthropic/claude-3.5-sonnet-20240620".to_string()
        )]
    );
}

#[test]
fn the_report_lists_new_models_price_changes_and_removed_endpoints() {
    let first = run(None, false);
    assert_eq!(first.report.totals.multi_endpoint_models, 3);
    // An older catalog: a dearer Groq price, an endpoint since dropped, a model since removed.
    let previous = first
        .catalog
        .replace("prompt = \"0.00000059\"", "prompt = \"0.00000065\"")
        + r#"
[[models]]
id = "old/retired"
name = "Retired"
context_length = 1000
max_output_tokens = 100
[[models.endpoints]]
provider = "groq"
upstream_model = "retired-1"
pricing = { prompt = "0.000001", completion = "0.000001" }
"#;
    let previous = previous.replace(
        "[[models.endpoints]]\nprovider = \"groq\"\nupstream_model = \"llama-3.3-70b-versatile\"",
        "[[models.endpoints]]\nprovider = \"groq\"\nupstream_model = \"llama-3.3-70b-specdec\"",
    );
    let second = run(Some(&previous), false);
    let r = &second.report;
    assert_eq!(r.removed_models, ["old/retired"]);
    assert!(r.new_models.is_empty());
    assert!(r
        .removed_endpoints
        .contains(&"meta-llama/llama-3.3-70b-instruct: groq (llama-3.3-70b-specdec)".to_string()));
    assert!(r
        .removed_endpoints
        .contains(&"old/retired: groq (retired-1)".to_string()));
    let change = r
        .price_changes
        .iter()
        .find(|c| c.provider == "groq")
        .expect("price change");
    assert_eq!(
        (
            change.field.as_str(),
            change.old.as_deref(),
            change.new.as_deref()
        ),
        ("prompt", Some("0.00000065"), Some("0.00000059"))
    );
    let text = r.to_string();
    assert!(text.contains("price changes: 1"), "{text}");
    // Importing twice gives the same file.
    assert_eq!(run(Some(&second.catalog), false).catalog, second.catalog);
}
