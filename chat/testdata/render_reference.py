# render_reference.py fills in the expected output of every case in cases.json with
# Python jinja2 configured the way transformers' apply_chat_template configures it
# (chat_template_utils: ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks
# and loopcontrols, its own tojson and raise_exception, strftime_now, the
# {% generation %} block, and the tokenizer's special tokens as variables). The clock
# is fixed at NOW so that strftime_now gives the same string each time.
# Run from this folder: python3 render_reference.py (needs jinja2 >= 3.1).
import datetime
import json

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

NOW = datetime.datetime(2024, 7, 26, 9, 5, 3)


class Generation(jinja2.ext.Extension):
    # {% generation %}...{% endgeneration %} renders its body unchanged, as
    # transformers' AssistantTracker does when no assistant mask is asked for.
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[Generation, jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: NOW.strftime(fmt)

templates = json.load(open("templates.json"))
cases = json.load(open("cases.json"))
for c in cases:
    for k in ("rendered", "error", "error_kind"):
        c.pop(k, None)
    if c["template"] is not None:
        src = templates[c["template"]]["template"]
        special = dict(templates[c["template"]]["special_tokens"])
    else:
        src = c["source"]
        special = {}
    special.update(c.get("special_tokens", {}))
    kwargs = dict(special)
    kwargs.update(c.get("vars", {}))
    try:
        t = env.from_string(src)
        c["rendered"] = t.render(messages=c["messages"], tools=c.get("tools"), documents=c.get("documents"),
                                 add_generation_prompt=c["add_generation_prompt"], **kwargs)
    except jinja2.exceptions.TemplateSyntaxError as e:
        c["error"], c["error_kind"] = "%s (line %d)" % (e.message, e.lineno), "syntax"
    except jinja2.exceptions.TemplateError as e:
        kind = "raise" if type(e) is jinja2.exceptions.TemplateError else "other"
        c["error"], c["error_kind"] = str(e), kind
    except Exception as e:
        c["error"], c["error_kind"] = "%s: %s" % (type(e).__name__, e), "other"
json.dump(cases, open("cases.json", "w"), indent=1, ensure_ascii=False)
print(sum("rendered" in c for c in cases), "rendered,", sum("error" in c for c in cases), "errors")
