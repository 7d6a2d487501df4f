// Calls a running Embrace server with the official openai npm client and
// checks the answers. run.sh starts the servers and sets:
//   EMBED_URL  base URL of a server with a sentence-embedding model
//   GEN_URL    base URL of a server with a GPT-2 model
//   CHAT_URL   base URL of a server with a model that has a chat template
//              (optional: the chat checks skip without it)
//   API_KEY    the key the servers require
import assert from "node:assert/strict";
import OpenAI from "openai";

const { EMBED_URL, GEN_URL, CHAT_URL, API_KEY } = process.env;
if (!EMBED_URL || !GEN_URL || !API_KEY) {
  console.error("set EMBED_URL, GEN_URL and API_KEY (run.sh does)");
  process.exit(2);
}

const embedClient = new OpenAI({ baseURL: `${EMBED_URL}/v1`, apiKey: API_KEY, maxRetries: 0 });
const genClient = new OpenAI({ baseURL: `${GEN_URL}/v1`, apiKey: API_KEY, maxRetries: 0 });

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (err) {
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
    process.exitCode = 1;
  }
}

await check("models.list names the served model", async () => {
  const list = await embedClient.models.list();
  assert.equal(list.data.length, 1);
  assert.ok(list.data[0].id.endsWith("minilm-st"), list.data[0].id);
});

await check("embeddings (client default: base64) equal the float format", async () => {
  const input = ["Hello world!", "The quick brown fox jumps over the lazy dog."];
  // The client asks for base64 and decodes it when no format is given.
  const b64 = await embedClient.embeddings.create({ model: "text-embedding-3-small", input });
  const flt = await embedClient.embeddings.create({ model: "any", input, encoding_format: "float" });
  assert.equal(b64.data.length, 2);
  assert.equal(b64.usage.prompt_tokens, flt.usage.prompt_tokens);
  assert.ok(b64.usage.prompt_tokens > 2);
  for (let i = 0; i < 2; i++) {
    const a = b64.data[i].embedding, b = flt.data[i].embedding;
    assert.equal(b64.data[i].index, i);
    assert.equal(a.length, b.length);
    assert.ok(a.length > 0);
    // JSON carries the shortest decimal of each float32; rounding it back
    // to float32 must give exactly the base64 value.
    for (let j = 0; j < a.length; j++) assert.equal(Math.fround(b[j]), a[j], `vector ${i}[${j}]`);
    const norm = Math.hypot(...a);
    assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
  }
  assert.notDeepEqual(b64.data[0].embedding, b64.data[1].embedding);
});

await check("embeddings dimensions", async () => {
  const r = await embedClient.embeddings.create({ model: "m", input: "Hello world!", dimensions: 8, encoding_format: "float" });
  assert.equal(r.data[0].embedding.length, 8);
});

await check("a bad request is an APIError with status 400", async () => {
  await assert.rejects(embedClient.embeddings.create({ model: "m", input: "" }), (err) => {
    assert.ok(err instanceof OpenAI.APIError, String(err));
    assert.equal(err.status, 400);
    assert.match(err.message, /empty string/);
    return true;
  });
});

await check("a wrong key is refused with 401", async () => {
  const bad = new OpenAI({ baseURL: `${EMBED_URL}/v1`, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(bad.embeddings.create({ model: "m", input: "x" }), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
    return true;
  });
});

let greedy;
await check("completion", async () => {
  const r = await genClient.completions.create({ model: "gpt2", prompt: "Hugging Face is", max_tokens: 8, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.usage.completion_tokens, 8);
  assert.ok(r.choices[0].text.length > 0);
  greedy = r.choices[0].text;
  const again = await genClient.completions.create({ model: "gpt2", prompt: "Hugging Face is", max_tokens: 8, temperature: 0 });
  assert.equal(again.choices[0].text, greedy);
});

await check("streamed completion concatenates to the non-streamed one", async () => {
  const params = { model: "gpt2", prompt: "Once upon a time", max_tokens: 16, temperature: 0.9, top_p: 0.95, seed: 1234 };
  const full = await genClient.completions.create(params);
  const stream = await genClient.completions.create({ ...params, stream: true });
  let text = "", chunks = 0, finish = null;
  for await (const chunk of stream) {
    chunks++;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks > 2, `only ${chunks} chunks`);
  assert.equal(text, full.choices[0].text);
  assert.equal(finish, full.choices[0].finish_reason);
});

await check("chat completions: model has no chat template", async () => {
  await assert.rejects(genClient.chat.completions.create({ model: "gpt2", messages: [{ role: "user", content: "hi" }] }), (err) => {
    assert.ok(err instanceof OpenAI.BadRequestError, String(err));
    assert.match(err.message, /model has no chat template/);
    return true;
  });
});

if (CHAT_URL) {
  const chatClient = new OpenAI({ baseURL: `${CHAT_URL}/v1`, apiKey: API_KEY, maxRetries: 0 });
  const messages = [
    { role: "system", content: "You are a helpful assistant." },
    { role: "user", content: "What is the capital of France?" },
  ];
  await check("chat completion", async () => {
    const r = await chatClient.chat.completions.create({ model: "llama", messages, max_tokens: 8, temperature: 0 });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0].message.role, "assistant");
    assert.equal(typeof r.choices[0].message.content, "string");
    assert.ok(r.usage.prompt_tokens > 10, `prompt_tokens ${r.usage.prompt_tokens}`);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
  });
  await check("streamed chat completion concatenates to the non-streamed one", async () => {
    const params = { model: "llama", messages, max_tokens: 12, temperature: 0.8, seed: 99 };
    const full = await chatClient.chat.completions.create(params);
    const stream = await chatClient.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    let text = "", role = "", finish = null, usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, "chat.completion.chunk");
      for (const c of chunk.choices) {
        if (c.delta.role) role = c.delta.role;
        if (c.delta.content) text += c.delta.content;
        if (c.finish_reason) finish = c.finish_reason;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(role, "assistant");
    assert.equal(text, full.choices[0].message.content);
    assert.equal(finish, full.choices[0].finish_reason);
    assert.equal(usage?.completion_tokens, full.usage.completion_tokens);
  });
} else {
  console.log("skip chat completions with a template (CHAT_URL not set)");
}

if (process.exitCode) console.log("openai client test FAILED");
else console.log("openai client test passed");
