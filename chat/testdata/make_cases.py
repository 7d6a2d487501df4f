# make_cases.py writes cases.json: the inputs of every rendering test (templates from
# templates.json or an inline "source"). render_reference.py then adds the expected
# output. Run both from this folder: python3 make_cases.py && python3 render_reference.py
import json

chat4 = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Hello! Who are you?"},
    {"role": "assistant", "content": "I am a tiny random model."},
    {"role": "user", "content": "Tell me a joke about Paris."},
]
user1 = [{"role": "user", "content": "What is the capital of France?"}]
nosys = [
    {"role": "user", "content": "Hello"},
    {"role": "assistant", "content": "   I am an assistant   "},
    {"role": "user", "content": "Another question"},
]
uni = [{"role": "user", "content": "Grüße, 日本語 😀 \"quotes\" <tags> & 'apostrophes'\ttab\\backslash\n  indented"}]
tools = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather — in °C or °F",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location"],
        },
    },
}]
toolconv = [
    {"role": "system", "content": "You answer weather questions."},
    {"role": "user", "content": "What's the weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {
        "name": "get_weather", "arguments": {"unit": "celsius", "location": "Paris, France"}}}]},
    {"role": "tool", "name": "get_weather", "content": "{\"temperature\": 22.5, \"sky\": \"clear\"}"},
]
toolconv_nosys = toolconv[1:]
thinking = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "<think>\nAdd two and two.\n</think>\n\n4"},
    {"role": "user", "content": "And 3+3?"},
]
reasoning_field = [
    {"role": "user", "content": "What is 2+2?"},
    {"role": "assistant", "content": "4", "reasoning_content": "Two plus two is four."},
    {"role": "user", "content": "Thanks"},
]

cases = []
def add(name, template, messages, gen=True, **kw):
    c = {"name": name, "template": template, "messages": messages, "add_generation_prompt": gen}
    c.update(kw)
    cases.append(c)

for t in ["tinyllama", "qwen2.5", "llama3.2", "qwen3", "smollm2", "mistral-v0.1", "llama2-chat", "gemma-it"]:
    add(t + "/chat4", t, chat4)
    add(t + "/user1-no-gen", t, user1, gen=False)
    add(t + "/nosys", t, nosys)
    add(t + "/unicode", t, uni)
for t in ["qwen2.5", "llama3.2", "qwen3"]:
    add(t + "/tools", t, toolconv, tools=tools)
    add(t + "/tools-nosys", t, toolconv_nosys, tools=tools)
add("llama3.2/tools-in-system", "llama3.2", toolconv, tools=tools, vars={"tools_in_user_message": False})
add("llama3.2/date-string", "llama3.2", chat4, vars={"date_string": "01 Jan 2030"})
add("llama3.2/no-messages-with-tools", "llama3.2", [], tools=tools)
add("qwen3/thinking-default", "qwen3", thinking)
add("qwen3/thinking-off", "qwen3", thinking, vars={"enable_thinking": False})
add("qwen3/thinking-on", "qwen3", thinking, vars={"enable_thinking": True})
add("qwen3/reasoning-content", "qwen3", reasoning_field, vars={"enable_thinking": False})
add("qwen3/reasoning-content-last", "qwen3", reasoning_field[:2], gen=False)

# Inline templates: one feature each.
def inline(name, source, messages=user1, **kw):
    add("inline/" + name, None, messages, source=source, **kw)

inline("trim-lstrip", "{% for m in messages %}\n  {% if m.role == 'user' %}\n    U: {{ m.content }}\n  {% endif %}\n{% endfor %}\n  {#- c #}\nend\n  {% if true %}  x  {% endif %}  \n{{ 'v' }}\n{% raw %}  {{ raw }}\n{% endraw %}\ntail", messages=nosys)
inline("whitespace-control", "a  {%- if true -%}  b  {%- endif %}  c\n  {%+ if true %}d{% endif %}\n{{- ' e ' -}}\n f", )
inline("tojson-default", "{{ v | tojson }}", vars={"v": {"b": 1, "a": [1.0, 0.5, 1e-07, 1e20, -0.0, 3.14159], "s": "é\"\\/\n\t\u0001\u2028<&>", "n": None, "t": True}})
inline("tojson-bigint", "{{ v | tojson }}", vars={"v": [12345678901234567890, -9223372036854775808]})
inline("tojson-indent", "{{ v | tojson(indent=2) }}|{{ v | tojson(indent=4, sort_keys=true) }}|{{ [] | tojson(indent=2) }}|{{ {} | tojson(indent=2) }}", vars={"v": {"z": [1, {"y": []}], "a": "x"}})
inline("tojson-separators", "{{ v | tojson(separators=(',', ':')) }}|{{ v | tojson(ensure_ascii=true) }}|{{ v | tojson(sort_keys=true, separators=(', ', ': ')) }}", vars={"v": {"k": "日本 😀", "a": [1, 2]}})
inline("tojson-strings", "{{ 'a\"b' | tojson }} {{ 5 | tojson }} {{ none | tojson }} {{ true | tojson }} {{ 2.50 | tojson }}")
inline("raise", "{% if messages | length > 0 %}{{ raise_exception('Bad roles: ' ~ messages[0].role) }}{% endif %}")
inline("extra-vars", "{{ enable_thinking }} {{ custom | default('none') }} {{ bos_token }}{{ eos_token }}", vars={"enable_thinking": False}, special_tokens={"bos_token": "<s>", "eos_token": "</s>"})
inline("undefined-prints-empty", "[{{ nothing }}][{{ messages[0].missing }}][{{ messages[0]['missing'] }}]{% if nothing is not defined %}ok{% endif %}")
inline("undefined-attr-error", "{{ nothing.attr }}")
inline("str-values", "{{ true }} {{ false }} {{ 1.5 }} {{ 2.0 }} {{ 3 / 2 }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 0.5 }} {{ 10 / 4 }} {{ 1e20 }} {{ 0.1 + 0.2 }} {{ 'x' ~ 1 ~ 2.5 ~ true }}")
inline("str-containers", "{{ [1, 'a', true, 2.5] }} {{ {'a': 1, 'b': 'x'} }} {{ messages[0] }}")
# Known differences of the engine (README.md): each in a case of its own.
inline("print-none", "{{ none }}|{{ [none] }}|{{ 'a' ~ none }}")
inline("print-tuple", "{{ ('t', 1) }} {{ {'b': 1, 'a': 2} | dictsort }}")
inline("int-power", "{{ 2 ** 10 }}")
inline("floordiv-negative", "{{ -7 // 2 }}")
inline("set-tuple-unpack", "{% set a, b = 1, 2 %}{{ a }}{{ b }}")
inline("none-is-defined", "{{ tools is defined }} {{ documents is defined }}")
inline("loop-controls", "{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}")
inline("loop-vars", "{% for m in messages %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }}/{{ loop.previtem.role if loop.previtem is defined else '-' }}/{{ loop.nextitem.role if loop.nextitem is defined else '-' }};{% endfor %}", messages=nosys)
inline("namespace", "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.found }} {{ ns.n }}", messages=nosys)
inline("string-methods", "{% set s = '  Hello, World  ' %}[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ s.strip().lower() }}][{{ s.upper() }}][{{ s.split(',') }}][{{ 'a b  c'.split() }}][{{ s.strip().startswith('Hell') }}][{{ s.strip().endswith('x') }}][{{ s.replace('l', 'L') }}][{{ 'xxhixx'.strip('x') }}][{{ 'abc'[::-1] }}][{{ 'abcdef'[1:3] }}][{{ s | trim }}][{{ 'hello world' | title }}][{{ 'hello' | capitalize }}][{{ s.find('W') }}][{{ 'a,b'.split(',', 1) }}]")
inline("filters", "{{ messages | map(attribute='role') | join(',') }}|{{ messages | selectattr('role', 'equalto', 'user') | list | length }}|{{ messages | rejectattr('role', 'equalto', 'user') | map(attribute='content') | first }}|{{ [3, 1, 2] | sort }}|{{ [3, 1, 2] | reverse | list }}|{{ [1, 2, 3] | last }}|{{ ['a', 'b'] | join }}|{{ 'x' | default('y') }}|{{ '' | default('y', true) }}|{{ '42' | int + 1 }}|{{ 42 | string + 'a' }}|{% for k, v in {'b': 1, 'a': 2, 'C': 3} | dictsort %}{{ k }}{{ v }}{% endfor %}|{{ [1, 2, 2, 3] | unique | list }}|{{ 'abc' | length }}|{{ 'hello' | replace('l', 'L') }}|{{ [1, 2, 3] | sum }}|{{ 'ab' | upper }}", messages=nosys)
inline("dict-methods", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d | items %}{{ k }}{% endfor %}|{{ d.get('a') }}|{{ d.get('zz', 'dflt') }}|{{ d.keys() | list }}|{{ 'a' in d }}|{{ d['b'] }}", vars={"d": {"b": 2, "a": 1, "c": 3}})
inline("tests", "{{ 'x' is string }} {{ 1 is number }} {{ d is mapping }} {{ [1] is iterable }} {{ 'x' is iterable }} {{ none is none }} {{ 3 is odd }} {{ d is defined }} {{ 1 is integer }} {{ 1.0 is float }} {{ [1] is sequence }} {{ true is boolean }}", vars={"d": {"a": 1}})
inline("macro", "{% macro render(m, prefix='> ') %}{{ prefix }}{{ m.role }}: {{ m.content }}{% endmacro %}{% for m in messages %}{{ render(m) }}\n{{ render(m, prefix='# ') }}\n{% endfor %}", messages=nosys)
inline("set-block", "{% set x %}  block {{ 1 + 1 }}\n{% endset %}[{{ x }}]")
inline("tuple-unpack", "{% for x, y in [(1, 'a'), (2, 'b')] %}{{ x }}{{ y }}{% endfor %}")
inline("inline-if", "{{ 'yes' if messages else 'no' }} {{ 'x' if false }}|{{ messages[0].role == 'user' and 'u' or 'o' }}")
inline("comparison", "{{ 1 < 2 < 3 }} {{ [1] + [2] }} {{ 'ab' * 3 }} {{ not true }} {{ 2 in [1, 2] }} {{ 'b' not in 'abc' }} {{ 1 == 1.0 }}")
inline("content-parts", "{% for m in messages %}{% if m.content is string %}{{ m.content }}{% else %}{% for p in m.content %}{% if p.type == 'text' %}{{ p.text }}{% else %}<{{ p.type }}>{% endif %}{% endfor %}{% endif %}{% endfor %}", messages=[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this."}]}])
inline("strftime", "{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %y %I %p %a %%') }}")
inline("generation-tag", "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}\n{% endfor %}", messages=nosys)
inline("syntax-error", "line one\n{% if x %}\nno end")
inline("range-too-big", "{% for i in range(200000) %}{% endfor %}x")
inline("documents", "{% for d in documents %}{{ d.title }}: {{ d.text }}\n{% endfor %}", documents=[{"title": "A", "text": "first"}, {"title": "B", "text": "second"}])
inline("tools-none", "{{ tools is none }} {{ documents is none }} {{ tools is not none }}")
inline("filter-block", "{% filter upper %}hi {{ messages[0].role }}{% endfilter %}")
inline("int-float-format", "{{ 10 / 2 }} {{ 1e3 }} {{ 1e-5 }} {{ 123456789.0 * 1000000000 }} {{ (0.1 * 3) }} {{ 2 ** 0.5 }}")

builtin = [
    {"role": "user", "content": "Search the weather"},
    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "brave_search", "arguments": {"query": "weather Paris", "lang": "fr"}}}]},
]
inline("builtin-tools", "{{ 'Tools: ' + builtin_tools | reject('equalto', 'code_interpreter') | join(', ') }}|{% set tc = messages[1].tool_calls[0].function %}{% if tc.name in builtin_tools %}<|python_tag|>{{ tc.name }}.call({% for k, v in tc.arguments | items %}{{ k + '=\"' + v + '\"' }}{% if not loop.last %}, {% endif %}{% endfor %}){% endif %}", messages=builtin, vars={"builtin_tools": ["code_interpreter", "brave_search", "wolfram_alpha"]})
inline("arguments-string-or-dict", "{% for m in messages %}{% for tc in m.tool_calls | default([]) %}{% if tc.function.arguments is string %}{{ tc.function.arguments }}{% else %}{{ tc.function.arguments | tojson }}{% endif %};{% endfor %}{% endfor %}", messages=[
    {"role": "assistant", "tool_calls": [{"function": {"name": "a", "arguments": "{\"x\": 1}"}}, {"function": {"name": "b", "arguments": {"y": [1, 2], "x": "é"}}}]}])
inline("last-user-index", "{% set ns = namespace(last=-1) %}{% for m in messages[::-1] %}{% if m.role == 'user' and ns.last == -1 %}{% set ns.last = (messages | length) - 1 - loop.index0 %}{% endif %}{% endfor %}{{ ns.last }}|{{ '\\n'.join(['a', 'b']) }}|{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join(' / ') }}", messages=nosys)
inline("content-none", "{% for m in messages %}{% if m.content is none %}none{% elif m.content %}{{ m.content }}{% else %}empty{% endif %};{% endfor %}", messages=[{"role": "assistant", "content": None}, {"role": "user", "content": ""}, {"role": "user", "content": "x"}])

json.dump(cases, open("cases.json", "w"), indent=1, ensure_ascii=False)
print(len(cases), "cases")
