"""The official `openai` Python package, unmodified, pointed at the gateway.

Started by scripts/sdk-tests.sh with a real `infron serve` in front of the mock provider, which
speaks OpenAI, Anthropic and Gemini wire formats. Every chat case runs once per wire format.
"""
import json
import os

import openai
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


def test_errors_are_raised_as_openai_exceptions(client):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nobody/nothing", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="mock/gpt-4o-mini", messages=[])
    assert "messages" in str(e.value)
    bad = openai.OpenAI(base_url=f"{BASE_URL}/v1", api_key="sk-inf-v1-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="mock/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


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
