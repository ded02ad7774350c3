"""The official `openai` Python package, unmodified, pointed at the gateway.

Started by scripts/sdk-tests.sh with a real `infron serve` in front of the mock provider, which
speaks OpenAI, Anthropic and Gemini wire formats. Every chat case runs once per wire format.
"""
import json
import os
from decimal import Decimal

import openai
import pydantic
import pytest

BASE_URL = os.environ["INFRON_BASE_URL"]
KEY = os.environ["INFRON_KEY"]
CHAT_MODELS = ["mock/gpt-4o-mini", "mock/claude", "mock/gemini"]


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key=KEY, max_retries=0)


def directive(**behaviour):
    return f"[[mock:{json.dumps(behaviour)}]]"


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat(client, model):
    r = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi " + directive(reply="Hello from the SDK test", prompt_tokens=20, completion_tokens=5)},
        ],
        max_tokens=50,
    )
    assert r.choices[0].message.content == "Hello from the SDK test"
    assert r.choices[0].finish_reason == "stop"
    assert r.model == model
    assert r.usage.prompt_tokens == 20
    assert r.usage.completion_tokens == 5
    assert r.usage.total_tokens == 25
    assert r.id.startswith("gen-")


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_chat_streaming(client, model):
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Count " + directive(reply="one two three four")}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=50,
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "one two three four"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_tools(client, model):
    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }]
    call = directive(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    r = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather? " + call}], tools=tools, max_tokens=50,
    )
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls"
    assert msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "Paris"}

    # The tool result goes back in a second turn.
    r2 = client.chat.completions.create(
        model=model,
        messages=[
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [tc.model_dump() for tc in msg.tool_calls]},
            {"role": "tool", "tool_call_id": msg.tool_calls[0].id, "content": "sunny"},
            {"role": "user", "content": "Thanks " + directive(reply="It is sunny in Paris")},
        ],
        tools=tools,
        max_tokens=50,
    )
    assert r2.choices[0].message.content == "It is sunny in Paris"


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_streamed_tool_call(client, model):
    call = directive(tool_calls=[{"name": "lookup", "arguments": {"q": "infron"}}])
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Look it up " + call}],
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}],
        stream=True,
        max_tokens=50,
    )
    name, args = None, ""
    for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                name = tc.function.name or name
                args += tc.function.arguments or ""
    assert name == "lookup"
    assert json.loads(args) == {"q": "infron"}


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_json_mode(client, model):
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "JSON please " + directive(reply='{"ok": true}')}],
        response_format={"type": "json_object"},
        max_tokens=50,
    )
    assert json.loads(r.choices[0].message.content) == {"ok": True}


@pytest.mark.parametrize("model", ["mock/gpt-4o-mini", "mock/gemini"])
def test_parse_json_schema(client, model):
    # The SDK sends the model class as `response_format: json_schema` (strict) and parses the answer.
    class City(pydantic.BaseModel):
        name: str
        population: int

    r = client.chat.completions.parse(
        model=model,
        messages=[{"role": "user", "content": "A city? " + directive(reply='{"name": "Oslo", "population": 709037}')}],
        response_format=City,
        max_tokens=50,
    )
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.parsed == City(name="Oslo", population=709037)


def test_embeddings(client):
    r = client.embeddings.create(model="mock/embed", input=["hello world", "second input"])
    assert len(r.data) == 2
    assert r.data[0].index == 0 and len(r.data[0].embedding) > 0
    assert r.usage.prompt_tokens > 0


def test_models_list(client):
    ids = {m.id for m in client.models.list()}
    assert {"mock/gpt-4o-mini", "mock/claude", "mock/gemini"} <= ids


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_models_retrieve(client, model):
    # The SDK sends the id's slash percent-encoded: GET /v1/models/mock%2Fgpt-4o-mini.
    m = client.models.retrieve(model)
    assert m.id == model


# ---- Legacy Completions API ----


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_completions(client, model):
    r = client.completions.create(
        model=model,
        prompt="Say hi " + directive(reply="Hi from the legacy API", prompt_tokens=12, completion_tokens=4),
        max_tokens=30,
    )
    assert r.object == "text_completion"
    assert r.model == model
    assert r.id.startswith("gen-")
    assert len(r.choices) == 1
    assert r.choices[0].text == "Hi from the legacy API"
    assert r.choices[0].index == 0
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 12
    assert r.usage.completion_tokens == 4
    assert r.usage.total_tokens == 16


def test_completions_length_finish_reason(client):
    r = client.completions.create(
        model="mock/gpt-4o-mini",
        prompt="Go on " + directive(reply="cut short", finish_reason="length"),
        max_tokens=2,
    )
    assert r.choices[0].text == "cut short"
    assert r.choices[0].finish_reason == "length"


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_completions_streaming(client, model):
    stream = client.completions.create(
        model=model,
        prompt="Count " + directive(reply="five six seven eight", completion_tokens=4),
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=30,
    )
    text, finish, usage, chunks = "", None, None, 0
    for chunk in stream:
        assert chunk.object == "text_completion"
        chunks += 1
        if chunk.usage:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.text or ""
            finish = choice.finish_reason or finish
    assert text == "five six seven eight"
    assert chunks > 1
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 4 and usage.prompt_tokens > 0


# ---- Errors: each status raises the SDK's class for it, with an OpenAI-shaped body ----


def assert_openai_error(err, status, kind):
    """The SDK parsed `{"error": {...}}`: `body` is the inner object, `type` and `code` come from it."""
    assert err.status_code == status
    assert err.response.status_code == status
    assert set(err.response.json()) == {"error"}
    assert isinstance(err.body, dict)
    assert err.body["type"] == kind
    assert err.type == kind
    assert err.body["code"] == status
    assert isinstance(err.body["message"], str) and err.body["message"]
    assert "param" in err.body
    assert err.message.startswith(f"Error code: {status}")


def test_error_400_bad_request(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="mock/gpt-4o-mini", messages=[])
    assert_openai_error(e.value, 400, "invalid_request_error")
    assert e.value.param == "messages"
    assert "messages" in str(e.value)


def test_error_401_unknown_key():
    bad = openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key="sk-inf-v1-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model="mock/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert_openai_error(e.value, 401, "authentication_error")


def test_error_402_no_credit():
    # A key of an account that was never granted credit. OpenAI has no class for 402: the SDK
    # raises its base APIStatusError.
    broke = openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key=os.environ["INFRON_BROKE_KEY"], max_retries=0)
    with pytest.raises(openai.APIStatusError) as e:
        broke.chat.completions.create(model="mock/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=20)
    assert type(e.value) is openai.APIStatusError
    assert_openai_error(e.value, 402, "insufficient_quota")
    assert Decimal(e.value.body["metadata"]["available"]) == 0
    assert Decimal(e.value.body["metadata"]["required"]) > 0


def test_error_404_unknown_model(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "hi"}])
    assert_openai_error(e.value, 404, "not_found_error")
    assert e.value.param == "model"
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("nobody/nothing")
    assert_openai_error(e.value, 404, "not_found_error")


def test_error_429_key_rate_limit():
    # INFRON_LIMITED_KEY allows one request a minute: the first goes through (unless an earlier
    # run in the last minute took it), and the next is refused.
    limited = openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key=os.environ["INFRON_LIMITED_KEY"], max_retries=0)
    ask = dict(model="mock/gpt-4o-mini", messages=[{"role": "user", "content": "hi " + directive(reply="ok")}], max_tokens=5)
    with pytest.raises(openai.RateLimitError) as e:
        for _ in range(3):
            limited.chat.completions.create(**ask)
    assert_openai_error(e.value, 429, "rate_limit_error")
    assert 0 < int(e.value.response.headers["retry-after"]) <= 60
    assert e.value.response.headers["x-ratelimit-limit-requests"] == "1"
    assert e.value.response.headers["x-ratelimit-remaining-requests"] == "0"


def test_error_429_every_provider_rate_limited(client):
    # Every endpoint of the model answers 429: the gateway answers 429 too, with the providers'
    # Retry-After, not 502.
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(
            model="mock/gpt-4o-mini",
            messages=[{"role": "user", "content": "hi " + directive(status=429, retry_after=7, error_message="slow down")}],
            max_tokens=5,
        )
    assert_openai_error(e.value, 429, "rate_limit_error")
    assert e.value.response.headers["retry-after"] == "7"


# ---- Responses API (stateless) ----


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_responses_create(client, model):
    r = client.responses.create(
        model=model,
        instructions="Be brief.",
        input="Hi " + directive(reply="Hello from the Responses API", prompt_tokens=20, completion_tokens=5),
        max_output_tokens=50,
    )
    assert r.object == "response"
    assert r.status == "completed"
    assert r.output_text == "Hello from the Responses API"
    assert r.model == model
    assert r.id.startswith("gen-")
    assert r.usage.input_tokens == 20
    assert r.usage.output_tokens == 5
    assert r.usage.total_tokens == 25


@pytest.mark.parametrize("model", CHAT_MODELS)
def test_responses_stream_helper(client, model):
    with client.responses.stream(
        model=model,
        input="Count " + directive(reply="one two three four", completion_tokens=4),
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == "one two three four"
    assert final.output_text == "one two three four"
    assert final.status == "completed"
    assert final.usage.output_tokens == 4


def test_responses_stream_true_and_tools(client):
    tools = [{
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }]
    events = list(client.responses.create(
        model="mock/gpt-4o-mini",
        input="Weather? " + directive(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}, "id": "call_7"}]),
        tools=tools,
        stream=True,
    ))
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = next(e for e in events if e.type == "response.output_item.done")
    assert done.item.type == "function_call"
    assert done.item.call_id == "call_7"
    assert json.loads(done.item.arguments) == {"city": "Oslo"}
    # The round trip: the call and its output go back as input.
    final = events[-1].response
    r = client.responses.create(
        model="mock/gpt-4o-mini",
        input=[{"role": "user", "content": "Weather? " + directive(reply="Cold in Oslo")}]
        + [item.model_dump(exclude_none=True) for item in final.output]
        + [{"type": "function_call_output", "call_id": "call_7", "output": "-3C"}],
        tools=tools,
    )
    assert r.output_text == "Cold in Oslo"


def test_responses_refuses_previous_response_id(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="mock/gpt-4o-mini", input="hi", previous_response_id="resp_1")
    assert "previous_response_id" in str(e.value)


def test_responses_input_tokens(client):
    short = client.responses.input_tokens.count(model="mock/gpt-4o-mini", input="hi")
    long = client.responses.input_tokens.count(model="mock/gpt-4o-mini", input="word " * 400)
    assert short.object == "response.input_tokens"
    assert 0 < short.input_tokens < long.input_tokens
