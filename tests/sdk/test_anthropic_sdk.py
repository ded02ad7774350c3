"""The official `anthropic` Python package, unmodified, pointed at the gateway's Messages API.

Started by scripts/sdk-tests.sh like test_openai_sdk.py. Every case runs once per upstream wire
format (OpenAI, Anthropic, Gemini on the mock provider).
"""
import json
import os

import anthropic
import pytest

BASE_URL = os.environ["INFRON_BASE_URL"]
KEY = os.environ["INFRON_KEY"]
MODELS = ["mock/gpt-4o-mini", "mock/claude", "mock/gemini"]


@pytest.fixture(scope="module")
def client():
    # The SDK appends /v1/messages to the base URL and sends the key as x-api-key.
    return anthropic.Anthropic(base_url=BASE_URL, api_key=KEY, max_retries=0)


def directive(**behaviour):
    return f"[[mock:{json.dumps(behaviour)}]]"


@pytest.mark.parametrize("model", MODELS)
def test_messages(client, model):
    m = client.messages.create(
        model=model,
        max_tokens=50,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hi " + directive(reply="Hello from Anthropic's SDK", prompt_tokens=20, completion_tokens=5)}],
    )
    assert m.type == "message"
    assert m.role == "assistant"
    assert m.model == model
    assert m.content[0].type == "text"
    assert m.content[0].text == "Hello from Anthropic's SDK"
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens == 20
    assert m.usage.output_tokens == 5
    assert m.id.startswith("gen-")


@pytest.mark.parametrize("model", MODELS)
def test_streaming(client, model):
    with client.messages.stream(
        model=model,
        max_tokens=50,
        messages=[{"role": "user", "content": "Count " + directive(reply="one two three four", completion_tokens=4)}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three four"
    assert final.content[0].text == "one two three four"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4


@pytest.mark.parametrize("model", MODELS)
def test_tools(client, model):
    tools = [{
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }]
    call = directive(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    m = client.messages.create(
        model=model,
        max_tokens=100,
        tools=tools,
        messages=[{"role": "user", "content": "Weather in Paris? " + call}],
    )
    assert m.stop_reason == "tool_use"
    use = next(b for b in m.content if b.type == "tool_use")
    assert use.name == "get_weather"
    assert use.input == {"city": "Paris"}
    # The result goes back as a tool_result block.
    m2 = client.messages.create(
        model=model,
        max_tokens=100,
        tools=tools,
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": m.content},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": use.id, "content": "sunny"},
                {"type": "text", "text": "Thanks " + directive(reply="It is sunny.")},
            ]},
        ],
    )
    assert m2.content[0].text == "It is sunny."


@pytest.mark.parametrize("model", MODELS)
def test_streamed_tool_use(client, model):
    call = directive(tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}])
    with client.messages.stream(
        model=model,
        max_tokens=100,
        tools=[{"name": "lookup", "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
        messages=[{"role": "user", "content": "Look it up " + call}],
    ) as stream:
        final = stream.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert use.name == "lookup"
    assert use.input == {"q": "x"}
    assert final.stop_reason == "tool_use"


def test_count_tokens(client):
    r = client.messages.count_tokens(
        model="mock/claude",
        messages=[{"role": "user", "content": "hello " * 100}],
    )
    assert r.input_tokens > 100


def test_errors_are_raised_as_anthropic_exceptions(client):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="mock/nope", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    assert e.value.body["error"]["type"] == "not_found_error"
    bad = anthropic.Anthropic(base_url=BASE_URL, api_key="sk-inf-v1-invalid", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="mock/claude", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(
            model="mock/claude", max_tokens=10,
            messages=[{"role": "user", "content": "hi " + directive(status=400, error_message="bad request")}],
        )
