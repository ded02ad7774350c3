//! Schema-only types: the shapes of bodies that handlers read as loose JSON (Anthropic's
//! Messages, OpenAI's Responses, key and settings changes) and of answers they build with
//! `json!`. Each mirrors its parser or builder, named in its doc comment; the e2e test
//! `api_description` and schemathesis compare real answers with them.
#![allow(dead_code)]

use infron_router::legacy::CompletionRequest;
use infron_router::providers::embeddings::{Embedding, EmbeddingRequest};
use infron_router::types::{ChatResponse, GatewayOptions, Stop, StreamOptions};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::routes::usage::UsageOut;

// ---- errors ----

/// OpenAI's error envelope, which every route but `/v1/messages` answers errors with
/// (`ApiError::body`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    error: ErrorDetail,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status.
    code: u16,
    message: String,
    #[serde(rename = "type")]
    kind: ErrorType,
    /// The request field at fault (`messages[0].role`, `body`, `content-type`), `model` for
    /// unknown models, else null.
    #[schema(required = true)]
    param: Option<String>,
    /// Details: `required` / `available` (402), `availability` (404 without an eligible
    /// endpoint), `retry_after_seconds` (429), `provider_errors` (502).
    #[schema(required = true, value_type = Option<Object>)]
    metadata: Option<Value>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    InsufficientQuota,
    PermissionError,
    NotFoundError,
    ConflictError,
    RateLimitError,
    TimeoutError,
    UpstreamError,
    ServiceUnavailable,
    ServerError,
}

/// Anthropic's error shape, on `/v1/messages` and `/v1/messages/count_tokens`
/// (`routes::messages::error_response`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AnthropicErrorResponse {
    #[serde(rename = "type")]
    #[schema(pattern = "^error$")]
    kind: String,
    error: AnthropicErrorDetail,
    /// The request's id (`gen-…`).
    request_id: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AnthropicErrorDetail {
    #[serde(rename = "type")]
    kind: AnthropicErrorType,
    message: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnthropicErrorType {
    InvalidRequestError,
    RequestTooLarge,
    AuthenticationError,
    BillingError,
    PermissionError,
    NotFoundError,
    TimeoutError,
    RateLimitError,
    OverloadedError,
    ApiError,
}

// ---- chat, completions, embeddings ----

/// A chat completion with the gateway's `usage` (`chat::complete`).
#[derive(Serialize, ToSchema)]
pub struct ChatCompletion {
    #[serde(flatten)]
    inner: ChatResponse,
    usage: UsageOut,
}

/// A legacy text completion with the gateway's `usage`.
#[derive(Serialize, ToSchema)]
pub struct TextCompletionResponse {
    #[serde(flatten)]
    inner: infron_router::legacy::Completion,
    usage: UsageOut,
}

/// The legacy Completions request: its own fields and the chat fields it shares.
#[derive(Deserialize, ToSchema)]
pub struct CompletionsBody {
    #[serde(flatten)]
    legacy: CompletionRequest,
    /// A catalog id or alias (optionally `:floor` / `:nitro`). Required unless `models` is given.
    #[schema(example = "openai/gpt-4o-mini")]
    model: Option<String>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    #[schema(minimum = 1)]
    max_tokens: Option<u64>,
    #[schema(minimum = 0, maximum = 2)]
    temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    top_p: Option<f64>,
    stop: Option<Stop>,
    seed: Option<i64>,
    user: Option<String>,
    #[serde(flatten)]
    gateway: GatewayOptions,
}

/// The embeddings request with the gateway's `provider` and `usage`
/// (`EmbeddingRequest`; `routes::embeddings` takes `provider` and `usage` out).
#[derive(Deserialize, ToSchema)]
pub struct EmbeddingsBody {
    #[serde(flatten)]
    request: EmbeddingRequest,
    usage: Option<infron_router::types::UsageOption>,
    #[schema(value_type = Option<infron_router::preferences::Raw>)]
    provider: Option<Value>,
}

/// `routes::embeddings::EmbeddingsOut`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EmbeddingsResponse {
    #[schema(example = "list")]
    object: String,
    data: Vec<Embedding>,
    model: String,
    provider: String,
    usage: EmbeddingsUsage,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct EmbeddingsUsage {
    prompt_tokens: u64,
    total_tokens: u64,
    /// USD charged (with `usage: {"include": true}`).
    cost: Option<f64>,
}

// ---- Anthropic's Messages ----

/// Anthropic's Messages request, as `routes::messages::to_chat` reads it.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MessagesBody {
    #[schema(example = "openai/gpt-4o-mini")]
    model: String,
    /// Required on `/v1/messages`; ≥ 1.
    #[schema(minimum = 1)]
    max_tokens: u64,
    /// Alternating `user` / `assistant` turns, at least one.
    #[schema(min_items = 1)]
    messages: Vec<AnthropicMessage>,
    /// A string or text blocks.
    #[schema(value_type = Option<AnthropicContent>)]
    system: Option<Value>,
    /// `{name, description, input_schema, cache_control}`; server tools are refused.
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
    /// `{"type": "auto" | "any" | "none"}` or `{"type": "tool", "name"}`, with
    /// `disable_parallel_tool_use`.
    #[schema(value_type = Option<Object>)]
    tool_choice: Option<Value>,
    stop_sequences: Option<Vec<String>>,
    #[schema(minimum = 0, maximum = 2)]
    temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    top_p: Option<f64>,
    #[schema(minimum = 0)]
    top_k: Option<u64>,
    /// `{"type": "enabled", "budget_tokens"}`, `{"type": "disabled"}` or `{"type": "adaptive"}`.
    #[schema(value_type = Option<Object>)]
    thinking: Option<Value>,
    /// `{"user_id"}`.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    stream: Option<bool>,
    #[schema(value_type = Option<infron_router::preferences::Raw>)]
    provider: Option<Value>,
    models: Option<Vec<String>>,
}

/// `/v1/messages/count_tokens`: the Messages request without `max_tokens`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CountTokensBody {
    #[schema(example = "openai/gpt-4o-mini")]
    model: String,
    #[schema(min_items = 1)]
    messages: Vec<AnthropicMessage>,
    #[schema(value_type = Option<AnthropicContent>)]
    system: Option<Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
    #[schema(value_type = Option<Object>)]
    tool_choice: Option<Value>,
    #[schema(value_type = Option<Object>)]
    thinking: Option<Value>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AnthropicMessage {
    role: AnthropicRole,
    content: AnthropicContent,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnthropicRole {
    User,
    Assistant,
}

/// A string, or content blocks: `text`, `image` and `document` (`source` of type `base64` or
/// `url`), `tool_use`, `tool_result`, `thinking`, `redacted_thinking`.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AnthropicContent {
    Text(String),
    Blocks(Vec<AnthropicBlock>),
}

/// A content block; `type` says which fields it has.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AnthropicBlock {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

/// An Anthropic `message` (`routes::messages::message_json`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct MessageResponse {
    /// The request's id (`gen-…`).
    id: String,
    #[serde(rename = "type")]
    #[schema(pattern = "^message$")]
    kind: String,
    #[schema(pattern = "^assistant$")]
    role: String,
    model: String,
    /// `thinking`, `redacted_thinking`, `text` and `tool_use` blocks.
    content: Vec<AnthropicBlock>,
    stop_reason: StopReason,
    #[schema(required = true)]
    stop_sequence: Option<String>,
    usage: AnthropicUsage,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    ToolUse,
    Refusal,
}

/// `routes::messages::usage_json`: `input_tokens` excludes cache reads and writes.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AnthropicUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
}

/// `{"input_tokens": N}`, an estimate.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CountTokensResponse {
    input_tokens: u64,
}

// ---- OpenAI's Responses ----

/// OpenAI's Responses request, as `routes::responses::to_chat` reads it. `previous_response_id`,
/// `conversation`, `prompt` and `background: true` are refused (nothing is stored); `store`,
/// `include`, `truncation`, `service_tier` and `stream_options` are accepted and ignored.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ResponsesBody {
    #[schema(example = "openai/gpt-4o-mini")]
    model: String,
    /// A string, or input items: messages (`role` `user`, `system`, `developer`, `assistant`;
    /// `content` a string or `input_text` / `input_image` / `input_file` / `output_text` /
    /// `refusal` parts), `function_call`, `function_call_output` and `reasoning` items.
    input: ResponsesInput,
    /// Sent as the system prompt.
    instructions: Option<String>,
    /// Function tools: `{"type": "function", "name", "description", "parameters", "strict"}`.
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
    /// `"auto"`, `"none"`, `"required"` or `{"type": "function", "name"}`.
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    #[schema(minimum = 1)]
    max_output_tokens: Option<u64>,
    #[schema(minimum = 0, maximum = 2)]
    temperature: Option<f64>,
    #[schema(minimum = 0, maximum = 1)]
    top_p: Option<f64>,
    /// `{"effort": "none" | "minimal" | "low" | "medium" | "high" | "xhigh"}`.
    #[schema(value_type = Option<Object>)]
    reasoning: Option<Value>,
    /// `{"format": {"type": "text" | "json_object"}}` or a `json_schema` format.
    #[schema(value_type = Option<Object>)]
    text: Option<Value>,
    stream: Option<bool>,
    /// Echoed in the answer.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    user: Option<String>,
    #[schema(value_type = Option<infron_router::preferences::Raw>)]
    provider: Option<Value>,
    models: Option<Vec<String>>,
}

/// `/v1/responses/input_tokens`: the Responses request, `model` optional.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct InputTokensBody {
    #[schema(example = "openai/gpt-4o-mini")]
    model: Option<String>,
    input: ResponsesInput,
    instructions: Option<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ResponsesInput {
    Text(String),
    #[schema(value_type = Vec<Object>)]
    Items(Vec<Value>),
}

/// A `response` (`routes::responses::response_json`), with the request's parameters echoed
/// (`instructions`, `tools`, `tool_choice`, `text`, `reasoning`, `temperature`, `top_p`,
/// `max_output_tokens`, `metadata`, `parallel_tool_calls`, `user`, `store: false`, ...).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ResponseObject {
    id: String,
    #[schema(pattern = "^response$")]
    object: String,
    created_at: i64,
    status: ResponseStatus,
    #[schema(required = true, value_type = Option<Object>)]
    error: Option<Value>,
    /// `{"reason": "max_output_tokens" | "content_filter"}` when incomplete.
    #[schema(required = true, value_type = Option<Object>)]
    incomplete_details: Option<Value>,
    model: String,
    output: Vec<OutputItem>,
    #[schema(required = true)]
    usage: Option<ResponsesUsage>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    Completed,
    Incomplete,
    InProgress,
    Failed,
}

/// An output item: `reasoning`, `message` or `function_call`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct OutputItem {
    id: String,
    #[serde(rename = "type")]
    kind: OutputItemType,
    status: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutputItemType {
    Reasoning,
    Message,
    FunctionCall,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ResponsesUsage {
    input_tokens: u64,
    input_tokens_details: Value2Cached,
    output_tokens: u64,
    output_tokens_details: ReasoningTokens,
    total_tokens: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = InputTokensDetails)]
pub struct Value2Cached {
    cached_tokens: u64,
    cache_write_tokens: u64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReasoningTokens {
    reasoning_tokens: u64,
}

/// `{"object": "response.input_tokens", "input_tokens": N}`, an estimate.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct InputTokensResponse {
    #[schema(pattern = "^response\\.input_tokens$")]
    object: String,
    input_tokens: u64,
}

// ---- models ----

/// `routes::models::pricing_json`: USD per token (per request, per image), as decimal strings;
/// `discount` a fraction.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Pricing {
    prompt: String,
    completion: String,
    request: String,
    image: String,
    input_cache_read: Option<String>,
    input_cache_write: Option<String>,
    discount: f64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Architecture {
    /// `text+image->text`.
    modality: String,
    input_modalities: Vec<String>,
    output_modalities: Vec<String>,
    tokenizer: String,
    #[schema(required = true)]
    instruct_type: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TopProvider {
    context_length: u64,
    #[schema(required = true)]
    max_completion_tokens: Option<u64>,
    is_moderated: bool,
}

/// A model in OpenRouter's shape (`routes::models::model_json`); prices of its cheapest endpoint.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Model {
    id: String,
    #[schema(pattern = "^model$")]
    object: String,
    created: i64,
    owned_by: String,
    name: String,
    description: String,
    canonical_slug: String,
    aliases: Vec<String>,
    context_length: u64,
    architecture: Architecture,
    pricing: Pricing,
    top_provider: TopProvider,
    #[schema(required = true, value_type = Option<Object>)]
    per_request_limits: Option<Value>,
    #[schema(required = true, value_type = Option<Object>)]
    default_parameters: Option<Value>,
    #[schema(required = true, value_type = Option<Vec<String>>)]
    supported_voices: Option<Value>,
    supported_parameters: Vec<String>,
    endpoints_count: u64,
    links: ModelLinks,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModelLinks {
    /// `/api/v1/models/{id}/endpoints`.
    details: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    #[schema(pattern = "^list$")]
    object: String,
    total_count: u64,
    links: ListLinks,
    data: Vec<Model>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ListLinks {
    /// Always null: the list is not paginated.
    #[schema(required = true)]
    next: Option<String>,
}

/// One model with every provider serving it (`routes::models::one`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModelDetail {
    #[serde(flatten)]
    model: Model,
    endpoints: Vec<ModelEndpoint>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ModelEndpoint {
    provider_name: String,
    tag: String,
    context_length: u64,
    #[schema(required = true)]
    max_completion_tokens: Option<u64>,
    pricing: Pricing,
    data_policy: DataPolicy,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DataPolicy {
    training: bool,
    retains_prompts: bool,
    retention_days: Option<u64>,
}

/// `routes::endpoints::of_model`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EndpointsResponse {
    data: EndpointsData,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct EndpointsData {
    id: String,
    name: String,
    created: i64,
    description: String,
    architecture: Architecture,
    endpoints: Vec<EndpointHealth>,
}

/// An endpoint with its measured health (`routes::endpoints::endpoint_json`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct EndpointHealth {
    name: String,
    model_id: String,
    model_name: String,
    provider_name: String,
    tag: String,
    upstream_model: String,
    context_length: u64,
    #[schema(required = true)]
    max_completion_tokens: Option<u64>,
    pricing: Pricing,
    supported_parameters: Vec<String>,
    input_modalities: Vec<String>,
    data_policy: DataPolicy,
    /// 0 ok, -1 degraded, -2 circuit open.
    #[schema(minimum = -2, maximum = 0)]
    status: i64,
    status_name: String,
    #[schema(required = true)]
    uptime_last_30m: Option<f64>,
    requests_last_30m: u64,
    #[schema(required = true)]
    latency_last_30m: Option<Percentiles>,
    #[schema(required = true)]
    throughput_last_30m: Option<Percentiles>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Percentiles {
    p50: f64,
    p75: f64,
    p90: f64,
    p99: f64,
}

// ---- usage, key, generation ----

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreditsResponse {
    data: Credits,
}

/// `routes::account::credits_json`; USD.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Credits {
    total_credits: f64,
    total_usage: f64,
    total_refunded: f64,
    total_expired: f64,
    balance: f64,
    /// Credit lots that still hold credits, oldest first.
    expiring: Vec<ExpiringLot>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ExpiringLot {
    amount: f64,
    expires_at: String,
    source: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CurrentKeyResponse {
    data: CurrentKey,
}

/// The calling key (`routes::account::key`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CurrentKey {
    label: String,
    name: String,
    #[schema(required = true)]
    limit: Option<f64>,
    #[schema(required = true)]
    limit_remaining: Option<f64>,
    #[schema(required = true)]
    limit_reset: Option<LimitReset>,
    usage: f64,
    usage_daily: f64,
    usage_weekly: f64,
    usage_monthly: f64,
    is_free_tier: bool,
    is_management_key: bool,
    kind: KeyKind,
    #[schema(required = true)]
    creator_user_id: Option<String>,
    rate_limit: Object4RateLimit,
    #[schema(required = true)]
    expires_at: Option<String>,
    created_at: String,
    workspace_id: String,
}

/// The per-minute limits the key's requests are checked against; -1 means none.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = KeyRateLimitInEffect)]
pub struct Object4RateLimit {
    requests: i64,
    tokens: i64,
    interval: String,
    account: RequestsTokens,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RequestsTokens {
    requests: i64,
    tokens: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitReset {
    Daily,
    Weekly,
    Monthly,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    Inference,
    Management,
    ManagementRead,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct GenerationResponse {
    data: Generation,
}

/// One request's record (`routes::account::generation_json`), in OpenRouter's shape plus
/// Infron's fields.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Generation {
    id: String,
    total_cost: f64,
    created_at: String,
    model: String,
    requested_model: String,
    streamed: bool,
    cancelled: bool,
    provider_name: Option<String>,
    upstream_model: Option<String>,
    latency: Option<i64>,
    first_token_latency: Option<i64>,
    generation_time: Option<i64>,
    finish_reason: Option<String>,
    tokens_prompt: i64,
    tokens_completion: i64,
    native_tokens_reasoning: i64,
    native_tokens_cached: i64,
    native_tokens_cache_write: i64,
    /// `completions` or `embeddings`.
    api_type: String,
    #[schema(value_type = Option<Vec<Object>>)]
    provider_responses: Option<Vec<Value>>,
}

// ---- keys ----

/// A key in OpenRouter's shape (`routes::keys::key_json`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Key {
    /// 64 hex digits: the key's id in these routes.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    hash: String,
    name: String,
    /// The hint `sk-inf-v1-...abcd`.
    label: String,
    disabled: bool,
    #[schema(required = true)]
    limit: Option<f64>,
    #[schema(required = true)]
    limit_remaining: Option<f64>,
    #[schema(required = true)]
    limit_reset: Option<LimitReset>,
    include_byok_in_limit: bool,
    usage: f64,
    usage_daily: f64,
    usage_weekly: f64,
    usage_monthly: f64,
    created_at: String,
    #[schema(required = true)]
    updated_at: Option<String>,
    #[schema(required = true)]
    expires_at: Option<String>,
    #[schema(required = true)]
    creator_user_id: Option<String>,
    workspace_id: String,
    kind: KeyKind,
    rate_limit: RateLimitSetting,
}

/// Per-minute limits; null where none is set.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RateLimitSetting {
    #[schema(required = true)]
    requests: Option<i64>,
    #[schema(required = true)]
    tokens: Option<i64>,
    interval: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    data: Vec<Key>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyResponse {
    data: Key,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    data: Key,
    /// The secret, shown this once.
    key: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    deleted: bool,
}

/// A USD amount: a number or a decimal string, ≥ 0, at most 12 decimals.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum UsdAmount {
    Number(f64),
    Decimal(String),
}

/// `POST /api/v1/keys` (`routes::keys::create_key`).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    #[schema(example = "laptop")]
    name: String,
    limit: Option<UsdAmount>,
    /// Needs a `limit`.
    limit_reset: Option<LimitReset>,
    /// An RFC 3339 time in UTC (`Z`), in the future.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// Makes the key another member's (owners, admins, management keys).
    #[schema(format = Uuid)]
    creator_user_id: Option<String>,
    /// `management` / `management_read`: signed-in owners and admins only.
    kind: Option<KeyKind>,
    /// Must be the account's id.
    workspace_id: Option<String>,
}

/// `PATCH /api/v1/keys/{hash}` (`routes::keys::update_key`); null clears a field.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyChange {
    name: Option<String>,
    disabled: Option<bool>,
    limit: Option<UsdAmount>,
    limit_reset: Option<LimitReset>,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    rate_limit: Option<RateLimitChange>,
}

/// Per-minute limits, each 1 to 10⁹ or null for none.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitChange {
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    requests: Option<i64>,
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    tokens: Option<i64>,
}

// ---- activity, logs, audit ----

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityResponse {
    data: Vec<ActivityRow>,
}

/// Per UTC day, model, provider and key (`routes::activity::activity_json`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ActivityRow {
    /// `YYYY-MM-DD`.
    date: String,
    model: String,
    model_permaslug: String,
    endpoint_id: String,
    provider_name: String,
    usage: f64,
    byok_usage_inference: f64,
    requests: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    reasoning_tokens: i64,
    #[schema(required = true)]
    api_key_hash: Option<String>,
    #[schema(required = true)]
    api_key_name: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LogsResponse {
    data: Vec<LogEntry>,
    /// Pass as `cursor` for the next page; null at the end.
    #[schema(required = true)]
    next_cursor: Option<String>,
}

/// The request log, metadata only (`routes::activity::logs_json`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    id: String,
    created_at: String,
    model: Option<String>,
    requested_model: String,
    provider_name: Option<String>,
    upstream_model: Option<String>,
    api_type: String,
    api_key_hash: Option<String>,
    api_key_name: Option<String>,
    tokens_prompt: i64,
    tokens_completion: i64,
    total_cost: f64,
    status: i64,
    streamed: bool,
    cancelled: bool,
    cache_hit: bool,
    latency: Option<i64>,
    first_token_latency: Option<i64>,
    finish_reason: Option<String>,
    usage_source: Option<String>,
    error_class: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<Object>)]
    data: Vec<Value>,
    #[schema(required = true)]
    next_cursor: Option<String>,
}

// ---- account, members, invitations ----

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AccountSettingsResponse {
    data: AccountSettings,
}

/// `routes::members::settings_json`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AccountSettings {
    id: String,
    name: String,
    allow_training: bool,
    #[schema(required = true)]
    default_key_limit: Option<f64>,
    #[schema(required = true)]
    default_key_limit_reset: Option<LimitReset>,
    rate_limit: RateLimitSetting,
    default_key_rate_limit: RateLimitSetting,
    frozen: bool,
    #[schema(required = true)]
    frozen_at: Option<String>,
    created_at: String,
}

/// `PATCH /api/v1/account` (`routes::members::change_settings`); null clears a limit.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    name: Option<String>,
    allow_training: Option<bool>,
    default_key_limit: Option<UsdAmount>,
    default_key_limit_reset: Option<LimitReset>,
    rate_limit: Option<RateLimitChange>,
    default_key_rate_limit: Option<RateLimitChange>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    Owner,
    Admin,
    Member,
    Billing,
}

/// A role that can be given (`owner` passes by transfer).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GivenRole {
    Admin,
    Member,
    Billing,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberList {
    data: Vec<MemberEntry>,
    invitations: Vec<Invitation>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MemberEntry {
    user_id: String,
    email: String,
    role: MemberRole,
    joined_at: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Invitation {
    id: String,
    email: String,
    role: MemberRole,
    invited_by: Option<String>,
    created_at: String,
    expires_at: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct InvitationList {
    data: Vec<Invitation>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct InvitationResponse {
    data: Invitation,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RoleChangeBody {
    role: GivenRole,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct InviteBody {
    #[schema(format = Email)]
    email: String,
    role: GivenRole,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TransferBody {
    #[schema(format = Uuid)]
    user_id: String,
}

/// `{"data": {...}}` with what the change did.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct DataObject {
    #[schema(value_type = Object)]
    data: Value,
}

// ---- sign-in ----

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Credentials {
    #[schema(format = Email)]
    email: String,
    /// 10 to 256 characters.
    #[schema(min_length = 10, max_length = 256)]
    password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct EmailBody {
    #[schema(format = Email)]
    email: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TokenBody {
    token: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ResetBody {
    token: String,
    #[schema(min_length = 10, max_length = 256)]
    password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: String,
    #[schema(min_length = 10, max_length = 256)]
    new_password: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AccountChoice {
    #[schema(format = Uuid)]
    account_id: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NewAccount {
    name: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SignedIn {
    data: SignedInData,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SignedInData {
    user_id: String,
    #[schema(required = true)]
    account_id: Option<String>,
    /// Send as `X-CSRF-Token` with every change made with this session.
    csrf_token: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    data: Me,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Me {
    user: MeUser,
    #[schema(required = true)]
    account_id: Option<String>,
    csrf_token: String,
    accounts: Vec<Membership>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct MeUser {
    id: String,
    email: String,
    email_verified: bool,
    created_at: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Membership {
    id: String,
    name: String,
    role: MemberRole,
    personal: bool,
    frozen: bool,
}

// ---- credits (Stripe Checkout) ----

/// `POST /api/v1/credits/checkout` (`routes::stripe::create_checkout`).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CheckoutBody {
    /// USD of credits to buy, in whole cents; the fee is added on top.
    #[schema(example = 20)]
    amount: UsdAmount,
}

/// A Stripe Checkout Session to send the buyer to; the signed webhook credits the account.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CheckoutResponse {
    id: String,
    url: String,
    credits: f64,
    fee: f64,
    total: f64,
    currency: String,
}

/// `{"data": {"id", "url"}}`: a Stripe Checkout Session in setup mode that saves a card.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct CardSetupResponse {
    data: CardSetup,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CardSetup {
    id: String,
    url: String,
}

// ---- alerts and auto top-up ----

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AlertSettingsResponse {
    data: AlertSettings,
}

/// `routes::alerts::alerts_json`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AlertSettings {
    /// Alert when the balance falls below this (USD); null: off.
    #[schema(required = true)]
    low_balance_threshold: Option<f64>,
    /// Alert at 80% and 100% of each key's spending limit.
    key_spend: bool,
    /// Email the account's owners and admins.
    email: bool,
    #[schema(required = true)]
    webhook_url: Option<String>,
    webhook_secret_set: bool,
    /// The header carrying the webhook's signature.
    signature_header: String,
    /// The latest alerts, newest first, with how each delivery went.
    recent: Vec<AlertFiring>,
    /// The webhook's signing secret, only in the answer to the change that set the first URL.
    webhook_secret: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AlertFiring {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    fired_at: String,
    #[schema(required = true)]
    cleared_at: Option<String>,
    #[schema(value_type = Object)]
    data: Value,
    deliveries: Vec<AlertDelivery>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AlertDelivery {
    /// `email` or `webhook`.
    channel: String,
    target: String,
    attempts: i32,
    #[schema(required = true)]
    delivered_at: Option<String>,
    #[schema(required = true)]
    failed_at: Option<String>,
    #[schema(required = true)]
    last_error: Option<String>,
}

/// `PATCH /api/v1/account/alerts` (`routes::alerts::change_alerts`); absent fields keep their
/// value, null clears the threshold or the URL.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsChange {
    /// USD, in whole cents, more than 0.
    low_balance_threshold: Option<UsdAmount>,
    key_spend: Option<bool>,
    email: Option<bool>,
    /// An https URL that resolves to a public address.
    webhook_url: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct WebhookSecretResponse {
    data: WebhookSecret,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct WebhookSecret {
    /// Shown this once; the previous secret stops working.
    webhook_secret: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AutoTopupResponse {
    data: AutoTopup,
}

/// `routes::alerts::auto_topup_json`; USD.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct AutoTopup {
    enabled: bool,
    /// Buy when the balance falls below this.
    threshold: f64,
    /// Credits bought each time; `fee` is added, `total` is charged.
    amount: f64,
    fee: f64,
    total: f64,
    card_saved: bool,
    #[schema(required = true)]
    card: Option<SavedCard>,
    /// Why the last payment failed; auto top-up stays off until it is turned on again.
    #[schema(required = true)]
    last_failure: Option<String>,
    #[schema(required = true)]
    last_failure_at: Option<String>,
    /// Whether this server takes payments (Stripe is configured).
    available: bool,
    recent: Vec<AutoTopupTrigger>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct SavedCard {
    brand: String,
    last4: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AutoTopupTrigger {
    id: String,
    /// `pending`, `processing`, `succeeded` or `failed`.
    status: String,
    credits: f64,
    fee: f64,
    total: f64,
    #[schema(required = true)]
    payment_intent: Option<String>,
    #[schema(required = true)]
    error: Option<String>,
    created_at: String,
}

/// `PATCH /api/v1/account/auto-topup` (`routes::alerts::change_auto_topup`); turning it on
/// needs a saved card.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoTopupChange {
    enabled: Option<bool>,
    threshold: Option<UsdAmount>,
    amount: Option<UsdAmount>,
}

// ---- operators ----

/// `POST /api/v1/operator/auth/signin`'s answer.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct OperatorSignedIn {
    data: OperatorSignedInData,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OperatorSignedInData {
    operator_id: String,
    /// Send as `X-CSRF-Token` with every change made with this session.
    csrf_token: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OperatorAccountList {
    data: Vec<OperatorAccountRow>,
}

/// `routes::operator::accounts_json`: the account's settings with its balance and owner.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct OperatorAccountRow {
    #[serde(flatten)]
    settings: AccountSettings,
    balance: f64,
    #[schema(required = true)]
    owner_email: Option<String>,
    /// How many members.
    members: i64,
    #[schema(required = true)]
    frozen_reason: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OperatorAccountResponse {
    data: OperatorAccount,
}

/// `routes::operator::account_json`.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct OperatorAccount {
    #[serde(flatten)]
    settings: AccountSettings,
    balance: f64,
    #[schema(required = true)]
    frozen_reason: Option<String>,
    members: Vec<OperatorMember>,
    keys: Vec<OperatorKey>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OperatorMember {
    user_id: String,
    email: String,
    role: MemberRole,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OperatorKey {
    id: String,
    name: String,
    label: String,
    kind: KeyKind,
    disabled: bool,
    #[schema(required = true)]
    created_by: Option<String>,
}

/// `POST /api/v1/operator/accounts/{id}/grants` (`routes::operator::do_grant`).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// USD, a decimal string, more than 0 and at most 100000000.
    #[schema(example = "25.00")]
    amount: String,
    /// 1 to 500 characters, recorded in the ledger and the audit log.
    reason: String,
    /// The same key grants once (1 to 200 characters).
    idempotency_key: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct GrantResponse {
    data: GrantResult,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct GrantResult {
    /// The grant's transaction id, for a reversal.
    grant: String,
    /// False when this idempotency key had granted already.
    newly_posted: bool,
    amount: f64,
    balance: f64,
}

/// `POST /api/v1/operator/accounts/{id}/reversals` (`routes::operator::do_reverse`).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseBody {
    /// The grant's transaction id.
    grant: String,
    reason: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReversalResponse {
    data: ReversalResult,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReversalResult {
    reversal: String,
    granted: f64,
    /// What was left of the grant; spent credits stay spent.
    reversed: f64,
    balance: f64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeBody {
    /// 1 to 500 characters.
    reason: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CatalogReloaded {
    data: CatalogReloadedData,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct CatalogReloadedData {
    reloaded: bool,
    file: String,
    providers: u64,
    models: u64,
    endpoints: u64,
}

// ---- operations ----

/// `GET /health` (`routes::ops::health`): 200 when both answer, 503 otherwise.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    status: String,
    postgres: bool,
    redis: bool,
}

/// `GET /ready` (`routes::ops::ready`): 200 when ready, 503 with `failing` otherwise.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// `ready` or `not_ready`.
    status: String,
    /// What is not ready: `postgres`, `redis`, `catalog`, `draining`.
    failing: Vec<String>,
    postgres: bool,
    redis: bool,
    catalog: ReadyCatalog,
    draining: bool,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ReadyCatalog {
    models: u64,
    configured_providers: u64,
}
