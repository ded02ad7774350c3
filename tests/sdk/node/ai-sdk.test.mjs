// The Vercel AI SDK (`ai`) through `@openrouter/ai-sdk-provider`, with the gateway's OpenRouter
// base URL (`/api/v1`). Started by scripts/sdk-tests.sh like openai.test.mjs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createOpenRouter } from '@openrouter/ai-sdk-provider';
import { APICallError, generateObject, generateText, Output, streamText, tool } from 'ai';
import { z } from 'zod';

const openrouter = createOpenRouter({ baseURL: `${process.env.INFRON_BASE_URL}/api/v1`, apiKey: process.env.INFRON_KEY });
const MODELS = ['mock/gpt-4o-mini', 'mock/claude', 'mock/gemini'];

const directive = (behaviour) => `[[mock:${JSON.stringify(behaviour)}]]`;

const weather = tool({
  description: 'Weather in a city',
  inputSchema: z.object({ city: z.string() }),
});

const city = z.object({ name: z.string(), population: z.number().int() });

describe('Vercel AI SDK with the OpenRouter provider', () => {
  for (const model of MODELS) {
    test(`generateText: ${model}`, async () => {
      const r = await generateText({
        model: openrouter(model),
        system: 'Be brief.',
        prompt: 'Hi ' + directive({ reply: 'Hello from the AI SDK', prompt_tokens: 20, completion_tokens: 5 }),
        maxOutputTokens: 50,
        maxRetries: 0,
      });
      assert.equal(r.text, 'Hello from the AI SDK');
      assert.equal(r.finishReason, 'stop');
      assert.equal(r.usage.inputTokens, 20);
      assert.equal(r.usage.outputTokens, 5);
      assert.equal(r.usage.totalTokens, 25);
      assert.equal(r.response.modelId, model);
      assert.match(r.response.id, /^gen-/);
    });

    test(`streamText: ${model}`, async () => {
      const result = streamText({
        model: openrouter(model),
        prompt: 'Count ' + directive({ reply: 'one two three four', prompt_tokens: 9, completion_tokens: 4 }),
        maxOutputTokens: 50,
        maxRetries: 0,
        onError: () => {},
      });
      const parts = [];
      for await (const part of result.textStream) parts.push(part);
      assert.ok(parts.length > 1, `${parts.length} text parts`);
      assert.equal(parts.join(''), 'one two three four');
      assert.equal(await result.finishReason, 'stop');
      const usage = await result.usage;
      assert.equal(usage.inputTokens, 9);
      assert.equal(usage.outputTokens, 4);
    });
  }

  for (const model of MODELS) {
    test(`tool call, then its result in a second turn: ${model}`, async () => {
      const question = {
        role: 'user',
        content: 'Weather? ' + directive({ tool_calls: [{ name: 'weather', arguments: { city: 'Quito' } }] }),
      };
      const r = await generateText({
        model: openrouter(model),
        messages: [question],
        tools: { weather },
        maxOutputTokens: 50,
        maxRetries: 0,
      });
      assert.equal(r.finishReason, 'tool-calls');
      assert.equal(r.toolCalls.length, 1);
      assert.equal(r.toolCalls[0].toolName, 'weather');
      assert.deepEqual(r.toolCalls[0].input, { city: 'Quito' });
      const call = r.toolCalls[0];
      const r2 = await generateText({
        model: openrouter(model),
        messages: [
          question,
          ...r.response.messages,
          {
            role: 'tool',
            content: [{ type: 'tool-result', toolCallId: call.toolCallId, toolName: 'weather', output: { type: 'text', value: 'cloudy' } }],
          },
          { role: 'user', content: 'And? ' + directive({ reply: 'Cloudy in Quito' }) },
        ],
        tools: { weather },
        maxOutputTokens: 50,
        maxRetries: 0,
      });
      assert.equal(r2.text, 'Cloudy in Quito');
      assert.equal(r2.finishReason, 'stop');
    });
  }

  // Not streamed: the provider's completion model (2.9.1) sends text deltas without the
  // text-start part that `ai` 6 requires, so streamText drops every delta whatever the server
  // sends (the chunks from /api/v1/completions parse and carry the text, finish and usage).
  test('the legacy completions model (openrouter.completion, /api/v1/completions)', async () => {
    const r = await generateText({
      model: openrouter.completion('mock/gpt-4o-mini'),
      prompt: 'Say hi ' + directive({ reply: 'Hi from the legacy API', prompt_tokens: 12, completion_tokens: 4 }),
      maxOutputTokens: 30,
      maxRetries: 0,
    });
    assert.equal(r.text, 'Hi from the legacy API');
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.usage.inputTokens, 12);
    assert.equal(r.usage.outputTokens, 4);
    assert.equal(r.response.modelId, 'mock/gpt-4o-mini');
  });

  test("usage accounting: the provider that answered and the cost, in OpenRouter's metadata", async () => {
    // mock-openai: $1 per million prompt tokens, $2 per million completion tokens.
    const model = openrouter('mock/gpt-4o-mini', { usage: { include: true } });
    const prompt = 'Hi ' + directive({ reply: 'priced', prompt_tokens: 1000, completion_tokens: 500 });
    const r = await generateText({ model, prompt, maxRetries: 0 });
    const meta = r.providerMetadata.openrouter;
    assert.equal(meta.provider, 'mock-openai');
    assert.equal(meta.usage.promptTokens, 1000);
    assert.equal(meta.usage.completionTokens, 500);
    assert.equal(meta.usage.cost, 0.002);
    const s = streamText({ model, prompt, maxRetries: 0, onError: () => {} });
    assert.equal(await s.text, 'priced');
    const streamed = (await s.providerMetadata).openrouter;
    assert.equal(streamed.usage.cost, 0.002);
    assert.equal(streamed.usage.totalTokens, 1500);
  });

  test('streamed tool call', async () => {
    const result = streamText({
      model: openrouter('mock/gpt-4o-mini'),
      prompt: 'Weather? ' + directive({ tool_calls: [{ name: 'weather', arguments: { city: 'Lagos' } }] }),
      tools: { weather },
      maxRetries: 0,
      onError: () => {},
    });
    const calls = await result.toolCalls;
    assert.equal(calls.length, 1);
    assert.equal(calls[0].toolName, 'weather');
    assert.deepEqual(calls[0].input, { city: 'Lagos' });
    assert.equal(await result.finishReason, 'tool-calls');
  });

  for (const model of ['mock/gpt-4o-mini', 'mock/gemini']) {
    test(`generateObject (response_format json_schema): ${model}`, async () => {
      const r = await generateObject({
        model: openrouter(model),
        schema: city,
        prompt: 'A city? ' + directive({ reply: '{"name": "Nairobi", "population": 4397073}', completion_tokens: 12 }),
        maxRetries: 0,
      });
      assert.deepEqual(r.object, { name: 'Nairobi', population: 4397073 });
      assert.equal(r.finishReason, 'stop');
      assert.equal(r.usage.outputTokens, 12);
    });
  }

  test('generateText with Output.object', async () => {
    const r = await generateText({
      model: openrouter('mock/gpt-4o-mini'),
      output: Output.object({ schema: city }),
      prompt: 'A city? ' + directive({ reply: '{"name": "Lima", "population": 9943800}' }),
      maxRetries: 0,
    });
    assert.deepEqual(r.output, { name: 'Lima', population: 9943800 });
  });

  test('errors reach the caller as APICallError with the status and message', async () => {
    const bad = createOpenRouter({ baseURL: `${process.env.INFRON_BASE_URL}/api/v1`, apiKey: 'sk-inf-v1-wrong' });
    await assert.rejects(generateText({ model: bad('mock/gpt-4o-mini'), prompt: 'hi', maxRetries: 0 }), (err) => {
      assert.ok(APICallError.isInstance(err), String(err));
      assert.equal(err.statusCode, 401);
      assert.equal(JSON.parse(err.responseBody).error.type, 'authentication_error');
      return true;
    });
    await assert.rejects(generateText({ model: openrouter('nobody/nothing'), prompt: 'hi', maxRetries: 0 }), (err) => {
      assert.ok(APICallError.isInstance(err), String(err));
      assert.equal(err.statusCode, 404);
      assert.equal(err.isRetryable, false);
      return true;
    });
  });
});
