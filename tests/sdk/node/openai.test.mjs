// The official `openai` Node.js package, unmodified, pointed at the gateway.
// Started by scripts/sdk-tests.sh (INFRON_BASE_URL, INFRON_KEY, INFRON_BROKE_KEY,
// INFRON_LIMITED_KEY) with a real `infron serve` in front of the mock provider.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import OpenAI from 'openai';

const BASE_URL = process.env.INFRON_BASE_URL;
const MODELS = ['mock/gpt-4o-mini', 'mock/claude', 'mock/gemini'];
const client = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: process.env.INFRON_KEY, maxRetries: 0 });

const directive = (behaviour) => `[[mock:${JSON.stringify(behaviour)}]]`;

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

describe('chat completions', () => {
  for (const model of MODELS) {
    test(`create: ${model}`, async () => {
      const r = await client.chat.completions.create({
        model,
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Hi ' + directive({ reply: 'Hello from Node', prompt_tokens: 20, completion_tokens: 5 }) },
        ],
        max_tokens: 50,
      });
      assert.equal(r.object, 'chat.completion');
      assert.equal(r.model, model);
      assert.match(r.id, /^gen-/);
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.equal(r.choices[0].message.content, 'Hello from Node');
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.deepEqual(
        [r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens],
        [20, 5, 25],
      );
    });

    test(`stream: ${model}`, async () => {
      const stream = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'Count ' + directive({ reply: 'one two three four', completion_tokens: 4 }) }],
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: 50,
      });
      let text = '';
      let finish = null;
      let usage = null;
      let chunks = 0;
      for await (const chunk of stream) {
        chunks += 1;
        assert.equal(chunk.object, 'chat.completion.chunk');
        if (chunk.usage) usage = chunk.usage;
        for (const choice of chunk.choices) {
          text += choice.delta.content ?? '';
          finish = choice.finish_reason ?? finish;
        }
      }
      assert.equal(text, 'one two three four');
      assert.ok(chunks > 2, `only ${chunks} chunks`);
      assert.equal(finish, 'stop');
      assert.equal(usage?.completion_tokens, 4);
    });

    test(`tool call and its result: ${model}`, async () => {
      const question = {
        role: 'user',
        content: 'Weather? ' + directive({ tool_calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] }),
      };
      const r = await client.chat.completions.create({ model, messages: [question], tools: [weatherTool], max_tokens: 50 });
      const msg = r.choices[0].message;
      assert.equal(r.choices[0].finish_reason, 'tool_calls');
      assert.equal(msg.tool_calls.length, 1);
      assert.equal(msg.tool_calls[0].type, 'function');
      assert.equal(msg.tool_calls[0].function.name, 'get_weather');
      assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: 'Paris' });
      const r2 = await client.chat.completions.create({
        model,
        messages: [
          { role: 'user', content: 'Weather?' },
          msg,
          { role: 'tool', tool_call_id: msg.tool_calls[0].id, content: 'sunny' },
          { role: 'user', content: 'Thanks ' + directive({ reply: 'It is sunny in Paris' }) },
        ],
        tools: [weatherTool],
        max_tokens: 50,
      });
      assert.equal(r2.choices[0].message.content, 'It is sunny in Paris');
    });
  }

  for (const model of MODELS) {
    test(`stream helper assembles text and a tool call: ${model}`, async () => {
      const stream = client.chat.completions.stream({
        model,
        messages: [{
          role: 'user',
          content: 'Weather? ' + directive({
            reply: 'Let me look.', tool_calls: [{ name: 'get_weather', arguments: { city: 'Kyiv' } }], completion_tokens: 9,
          }),
        }],
        tools: [weatherTool],
        stream_options: { include_usage: true },
      });
      const final = await stream.finalChatCompletion();
      const msg = final.choices[0].message;
      assert.equal(msg.content, 'Let me look.');
      assert.equal(final.choices[0].finish_reason, 'tool_calls');
      assert.equal(msg.tool_calls.length, 1);
      assert.equal(msg.tool_calls[0].function.name, 'get_weather');
      assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: 'Kyiv' });
      assert.equal(final.usage.completion_tokens, 9);
    });
  }

  test('streamed tool call', async () => {
    const stream = await client.chat.completions.create({
      model: 'mock/gpt-4o-mini',
      messages: [{ role: 'user', content: 'Weather? ' + directive({ tool_calls: [{ name: 'get_weather', arguments: { city: 'Bern' } }] }) }],
      tools: [weatherTool],
      stream: true,
    });
    let name = null;
    let args = '';
    let finish = null;
    for await (const chunk of stream) {
      for (const choice of chunk.choices) {
        for (const tc of choice.delta.tool_calls ?? []) {
          name = tc.function?.name ?? name;
          args += tc.function?.arguments ?? '';
        }
        finish = choice.finish_reason ?? finish;
      }
    }
    assert.equal(name, 'get_weather');
    assert.deepEqual(JSON.parse(args), { city: 'Bern' });
    assert.equal(finish, 'tool_calls');
  });

  for (const model of ['mock/gpt-4o-mini', 'mock/gemini']) {
    test(`response_format json_schema, parsed by the SDK: ${model}`, async () => {
      const r = await client.chat.completions.parse({
        model,
        messages: [{ role: 'user', content: 'A city? ' + directive({ reply: '{"name": "Oslo", "population": 709037}' }) }],
        response_format: {
          type: 'json_schema',
          json_schema: {
            name: 'city',
            strict: true,
            schema: {
              type: 'object',
              properties: { name: { type: 'string' }, population: { type: 'integer' } },
              required: ['name', 'population'],
              additionalProperties: false,
            },
          },
        },
        max_tokens: 50,
      });
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.deepEqual(r.choices[0].message.parsed, { name: 'Oslo', population: 709037 });
    });
  }
});

describe('legacy completions', () => {
  for (const model of MODELS) {
    test(`create: ${model}`, async () => {
      const r = await client.completions.create({
        model,
        prompt: 'Say hi ' + directive({ reply: 'Hi from the legacy API', prompt_tokens: 12, completion_tokens: 4 }),
        max_tokens: 30,
      });
      assert.equal(r.object, 'text_completion');
      assert.equal(r.model, model);
      assert.equal(r.choices[0].text, 'Hi from the legacy API');
      assert.equal(r.choices[0].finish_reason, 'stop');
      assert.deepEqual([r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens], [12, 4, 16]);
    });
  }

  test('stream', async () => {
    const stream = await client.completions.create({
      model: 'mock/gpt-4o-mini',
      prompt: 'Count ' + directive({ reply: 'five six seven eight', completion_tokens: 4 }),
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 30,
    });
    let text = '';
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'text_completion');
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) {
        text += choice.text ?? '';
        finish = choice.finish_reason ?? finish;
      }
    }
    assert.equal(text, 'five six seven eight');
    assert.equal(finish, 'stop');
    assert.equal(usage?.completion_tokens, 4);
  });
});

describe('embeddings and models', () => {
  test('embeddings (the SDK asks for base64 and decodes it)', async () => {
    const r = await client.embeddings.create({ model: 'mock/embed', input: ['hello world', 'second input'] });
    assert.equal(r.data.length, 2);
    assert.deepEqual(r.data.map((d) => d.index), [0, 1]);
    for (const d of r.data) {
      assert.ok(Array.isArray(d.embedding), 'decoded to an array of numbers');
      assert.equal(d.embedding.length, 8);
      assert.ok(d.embedding.every((x) => Number.isFinite(x)));
    }
    assert.notDeepEqual(r.data[0].embedding, r.data[1].embedding);
    assert.ok(r.usage.prompt_tokens > 0);
  });

  test('embeddings as floats', async () => {
    const floats = await client.embeddings.create({ model: 'mock/embed', input: 'hello world', encoding_format: 'float' });
    const decoded = await client.embeddings.create({ model: 'mock/embed', input: 'hello world' });
    assert.equal(floats.data[0].embedding.length, 8);
    // The same vector either way (base64 carries f32, so compare at f32 precision).
    assert.deepEqual(decoded.data[0].embedding, floats.data[0].embedding.map((x) => Math.fround(x)));
  });

  test('models list', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    for (const id of [...MODELS, 'mock/embed']) assert.ok(ids.includes(id), `${id} listed`);
  });

  for (const model of MODELS) {
    test(`models retrieve (the SDK percent-encodes the slash): ${model}`, async () => {
      const m = await client.models.retrieve(model);
      assert.equal(m.id, model);
      assert.equal(m.object, 'model');
    });
  }
});

describe('responses', () => {
  for (const model of MODELS) {
    test(`create: ${model}`, async () => {
      const r = await client.responses.create({
        model,
        instructions: 'Be brief.',
        input: 'Hi ' + directive({ reply: 'Hello from the Responses API', prompt_tokens: 20, completion_tokens: 5 }),
        max_output_tokens: 50,
      });
      assert.equal(r.object, 'response');
      assert.equal(r.status, 'completed');
      assert.equal(r.model, model);
      assert.equal(r.output_text, 'Hello from the Responses API');
      assert.deepEqual([r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens], [20, 5, 25]);
    });
  }

  test('stream: true', async () => {
    const stream = await client.responses.create({
      model: 'mock/gpt-4o-mini',
      input: 'Count ' + directive({ reply: 'one two three four', completion_tokens: 4 }),
      stream: true,
    });
    const events = [];
    for await (const event of stream) events.push(event);
    const types = events.map((e) => e.type);
    assert.equal(types[0], 'response.created');
    assert.equal(types.at(-1), 'response.completed');
    assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
    const deltas = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta);
    assert.ok(deltas.length > 1);
    assert.equal(deltas.join(''), 'one two three four');
    const final = events.at(-1).response;
    assert.equal(final.status, 'completed');
    assert.equal(final.usage.output_tokens, 4);
  });

  test('stream helper with a function call', async () => {
    const stream = client.responses.stream({
      model: 'mock/gpt-4o-mini',
      input: 'Weather? ' + directive({ tool_calls: [{ name: 'get_weather', arguments: { city: 'Oslo' }, id: 'call_9' }] }),
      tools: [{ type: 'function', name: 'get_weather', parameters: weatherTool.function.parameters, strict: false }],
    });
    const final = await stream.finalResponse();
    const call = final.output.find((item) => item.type === 'function_call');
    assert.equal(call.name, 'get_weather');
    assert.equal(call.call_id, 'call_9');
    assert.deepEqual(JSON.parse(call.arguments), { city: 'Oslo' });
  });
});

// Each error status raises the SDK's class for it, parsed from an OpenAI-shaped body.
function assertOpenAIError(err, status, type) {
  assert.ok(err instanceof OpenAI.APIError, `an APIError, not ${err?.constructor?.name}: ${err}`);
  assert.equal(err.status, status);
  assert.equal(err.type, type);
  assert.equal(err.error.type, type);
  assert.equal(err.code, status);
  assert.equal(typeof err.error.message, 'string');
  assert.ok(err.error.message.length > 0);
  assert.ok('param' in err.error);
  assert.ok(err.message.startsWith(`${status} `), err.message);
  return true;
}

describe('errors', () => {
  const hi = { model: 'mock/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 };

  test('400: BadRequestError', async () => {
    await assert.rejects(client.chat.completions.create({ ...hi, messages: [] }), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError);
      assertOpenAIError(err, 400, 'invalid_request_error');
      assert.equal(err.param, 'messages');
      return true;
    });
  });

  test('401: AuthenticationError', async () => {
    const bad = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: 'sk-inf-v1-wrong', maxRetries: 0 });
    await assert.rejects(bad.chat.completions.create(hi), (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError);
      return assertOpenAIError(err, 401, 'authentication_error');
    });
  });

  test('402: APIError with status 402 (no credit)', async () => {
    const broke = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: process.env.INFRON_BROKE_KEY, maxRetries: 0 });
    await assert.rejects(broke.chat.completions.create(hi), (err) => {
      // OpenAI has no class of its own for 402.
      assert.equal(err.constructor, OpenAI.APIError);
      assertOpenAIError(err, 402, 'insufficient_quota');
      assert.equal(Number(err.error.metadata.available), 0);
      assert.ok(Number(err.error.metadata.required) > 0);
      return true;
    });
  });

  test('404: NotFoundError for an unknown model', async () => {
    await assert.rejects(client.chat.completions.create({ ...hi, model: 'nobody/nothing' }), (err) => {
      assert.ok(err instanceof OpenAI.NotFoundError);
      assertOpenAIError(err, 404, 'not_found_error');
      assert.equal(err.param, 'model');
      return true;
    });
    await assert.rejects(client.models.retrieve('nobody/nothing'), OpenAI.NotFoundError);
  });

  test("429: RateLimitError over the key's rate limit", async () => {
    // INFRON_LIMITED_KEY allows one request a minute: within three, one is refused.
    const limited = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: process.env.INFRON_LIMITED_KEY, maxRetries: 0 });
    const attempt = async () => {
      for (let i = 0; i < 3; i += 1) await limited.chat.completions.create({ ...hi, max_tokens: 5 });
    };
    await assert.rejects(attempt(), (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError);
      assertOpenAIError(err, 429, 'rate_limit_error');
      const retryAfter = Number(err.headers.get('retry-after'));
      assert.ok(retryAfter > 0 && retryAfter <= 60, `retry-after ${retryAfter}`);
      assert.equal(err.headers.get('x-ratelimit-limit-requests'), '1');
      return true;
    });
  });

  test('429: RateLimitError when every provider is rate-limited', async () => {
    const content = 'hi ' + directive({ status: 429, retry_after: 7, error_message: 'slow down' });
    await assert.rejects(client.chat.completions.create({ ...hi, messages: [{ role: 'user', content }] }), (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError);
      assertOpenAIError(err, 429, 'rate_limit_error');
      assert.equal(err.headers.get('retry-after'), '7');
      return true;
    });
  });
});
