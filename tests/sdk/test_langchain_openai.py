"""`langchain-openai`'s ChatOpenAI with `base_url` set to the gateway.

Started by scripts/sdk-tests.sh like the other files here.
"""
import json
import os

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

BASE_URL = os.environ["INFRON_BASE_URL"]
KEY = os.environ["INFRON_KEY"]
MODELS = ["mock/gpt-4o-mini", "mock/claude", "mock/gemini"]


def directive(**behaviour):
    return f"[[mock:{json.dumps(behaviour)}]]"


def chat(model="mock/gpt-4o-mini", **kwargs):
    return ChatOpenAI(model=model, base_url=f"{BASE_URL}/v1", api_key=KEY, max_retries=0, max_tokens=50, **kwargs)


class City(BaseModel):
    """A city and its country."""

    name: str = Field(description="the city's name")
    country: str = Field(description="the country it is in")


@pytest.mark.parametrize("model", MODELS)
def test_invoke(model):
    m = chat(model).invoke("Hi " + directive(reply="Hello from LangChain", prompt_tokens=9, completion_tokens=3))
    assert m.content == "Hello from LangChain"
    assert m.response_metadata["finish_reason"] == "stop"
    assert m.response_metadata["model_name"] == model
    assert m.usage_metadata["input_tokens"] == 9
    assert m.usage_metadata["output_tokens"] == 3
    assert m.usage_metadata["total_tokens"] == 12


def test_stream():
    chunks = list(chat(stream_usage=True).stream("Count " + directive(reply="red green blue", prompt_tokens=17, completion_tokens=7)))
    assert len(chunks) > 1
    total = chunks[0]
    for c in chunks[1:]:
        total += c
    assert total.content == "red green blue"
    assert total.response_metadata["finish_reason"] == "stop"
    assert total.usage_metadata["input_tokens"] == 17
    assert total.usage_metadata["output_tokens"] == 7


@pytest.mark.parametrize("model", MODELS)
def test_bind_tools(model):
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return "sunny"

    llm = chat(model).bind_tools([get_weather])
    question = HumanMessage("Weather? " + directive(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]))
    m = llm.invoke([question])
    assert m.response_metadata["finish_reason"] == "tool_calls"
    assert len(m.tool_calls) == 1
    assert m.tool_calls[0]["name"] == "get_weather"
    assert m.tool_calls[0]["args"] == {"city": "Rome"}
    # The tool's result goes back in a second turn.
    answer = llm.invoke([
        question,
        m,
        ToolMessage(content="sunny", tool_call_id=m.tool_calls[0]["id"]),
        HumanMessage("And? " + directive(reply="Sunny in Rome")),
    ])
    assert answer.content == "Sunny in Rome"


def test_with_structured_output_json_schema():
    structured = chat().with_structured_output(City, method="json_schema", include_raw=True)
    out = structured.invoke("Capital of Peru? " + directive(reply='{"name": "Lima", "country": "Peru"}'))
    assert out["parsing_error"] is None
    assert out["parsed"] == City(name="Lima", country="Peru")
    assert out["raw"].response_metadata["finish_reason"] == "stop"


def test_with_structured_output_function_calling():
    structured = chat().with_structured_output(City, method="function_calling")
    out = structured.invoke(
        "Capital of Chile? " + directive(tool_calls=[{"name": "City", "arguments": {"name": "Santiago", "country": "Chile"}}])
    )
    assert out == City(name="Santiago", country="Chile")


def text_of(message):
    """The text of a Responses-API message, whose content is a list of blocks."""
    return "".join(block["text"] for block in message.content if block["type"] == "text")


@pytest.mark.parametrize("model", MODELS)
def test_responses_api(model):
    # use_responses_api=True: ChatOpenAI talks to /v1/responses instead of chat completions.
    llm = chat(model, use_responses_api=True)
    m = llm.invoke("Hi " + directive(reply="Hello via Responses", prompt_tokens=9, completion_tokens=3))
    assert text_of(m) == "Hello via Responses"
    assert m.response_metadata["status"] == "completed"
    assert m.response_metadata["model_name"] == model
    assert (m.usage_metadata["input_tokens"], m.usage_metadata["output_tokens"]) == (9, 3)

    chunks = list(llm.stream("Count " + directive(reply="a b c", prompt_tokens=13, completion_tokens=5)))
    total = chunks[0]
    for c in chunks[1:]:
        total += c
    assert len(chunks) > 1
    assert text_of(total) == "a b c"
    assert (total.usage_metadata["input_tokens"], total.usage_metadata["output_tokens"]) == (13, 5)


def test_responses_api_tool_round_trip():
    def get_weather(city: str) -> str:
        """Weather in a city."""
        return "sunny"

    llm = chat(use_responses_api=True).bind_tools([get_weather])
    question = HumanMessage("Weather? " + directive(tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]))
    m = llm.invoke([question])
    assert len(m.tool_calls) == 1
    assert m.tool_calls[0]["name"] == "get_weather"
    assert m.tool_calls[0]["args"] == {"city": "Rome"}
    answer = llm.invoke([
        question,
        m,
        ToolMessage(content="sunny", tool_call_id=m.tool_calls[0]["id"]),
        HumanMessage("And? " + directive(reply="Sunny in Rome")),
    ])
    assert text_of(answer) == "Sunny in Rome"
