"""LiteLLM used as a client, with the gateway as its OpenRouter provider.

`model="openrouter/<catalog id>"` and `api_base=<gateway>/api/v1`: LiteLLM sends OpenRouter's
request to `<api_base>/chat/completions` and parses the answer as OpenRouter's. Started by
scripts/sdk-tests.sh like the other files here.
"""
import json
import os

# LiteLLM would otherwise fetch its model price map from the internet on import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
import pytest  # noqa: E402

BASE_URL = os.environ["INFRON_BASE_URL"]
KEY = os.environ["INFRON_KEY"]
API_BASE = f"{BASE_URL}/api/v1"
MODELS = ["mock/gpt-4o-mini", "mock/claude", "mock/gemini"]

# Noise from LiteLLM's own pydantic models, not from anything the gateway sent.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:pydantic"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm"),
]

litellm.telemetry = False
litellm.suppress_debug_info = True


def directive(**behaviour):
    return f"[[mock:{json.dumps(behaviour)}]]"


def ask(model, content, **kwargs):
    return litellm.completion(
        model=f"openrouter/{model}",
        api_base=API_BASE,
        api_key=KEY,
        messages=[{"role": "user", "content": content}],
        num_retries=0,
        **kwargs,
    )


@pytest.mark.parametrize("model", MODELS)
def test_completion(model):
    r = ask(model, "Hi " + directive(reply="Hello through LiteLLM", prompt_tokens=11, completion_tokens=3), max_tokens=30)
    assert r.choices[0].message.content == "Hello through LiteLLM"
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 11
    assert r.usage.completion_tokens == 3
    assert r.usage.total_tokens == 14
    assert r.id.startswith("gen-")


def test_streaming():
    stream = ask(
        "mock/gpt-4o-mini",
        # Counts no tokenizer would give, so they can only come from the gateway's usage chunk.
        "Count " + directive(reply="alpha beta gamma delta", prompt_tokens=31, completion_tokens=13),
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=30,
    )
    text, finish, usage, chunks = "", None, None, 0
    for chunk in stream:
        chunks += 1
        if getattr(chunk, "usage", None):
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == "alpha beta gamma delta"
    assert chunks > 1
    assert finish == "stop"
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (31, 13)


@pytest.mark.parametrize("model", MODELS)
def test_tool_call(model):
    tools = [{
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }]
    r = ask(
        model,
        "Weather? " + directive(tool_calls=[{"name": "get_weather", "arguments": {"city": "Lima"}}]),
        tools=tools,
        max_tokens=30,
    )
    assert r.choices[0].finish_reason == "tool_calls"
    calls = r.choices[0].message.tool_calls
    assert len(calls) == 1
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Lima"}
    assert calls[0].id


def test_errors_map_to_litellm_exceptions():
    with pytest.raises(litellm.AuthenticationError) as e:
        litellm.completion(
            model="openrouter/mock/gpt-4o-mini", api_base=API_BASE, api_key="sk-inf-v1-wrong",
            messages=[{"role": "user", "content": "hi"}], num_retries=0,
        )
    assert e.value.status_code == 401
    with pytest.raises(litellm.NotFoundError) as e:
        ask("nobody/nothing", "hi")
    assert e.value.status_code == 404
    with pytest.raises(litellm.RateLimitError) as e:
        ask("mock/gpt-4o-mini", "hi " + directive(status=429, retry_after=3))
    assert e.value.status_code == 429


def test_as_a_generic_openai_compatible_server():
    # The other common set-up: LiteLLM's `openai/` prefix with the gateway's /v1 as api_base.
    r = litellm.completion(
        model="openai/mock/claude",
        api_base=f"{BASE_URL}/v1",
        api_key=KEY,
        messages=[{"role": "user", "content": "Hi " + directive(reply="Hello, generically", prompt_tokens=5, completion_tokens=2)}],
        num_retries=0,
    )
    assert r.choices[0].message.content == "Hello, generically"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (5, 2)
