"""The hardened sandbox: templates render, and escapes and resource bombs are refused."""

from __future__ import annotations

from typing import cast

import pytest

from ductwork.engine.graph import Plan, WorkflowInvalid, build_plan
from ductwork.engine.templating import (
    Template,
    TemplateFailure,
    compile_expression,
    compile_template,
    has_template_syntax,
)
from ductwork.models import WorkflowDefinition
from ductwork.nodes.base import NodeServices
from ductwork.nodes.registry import REGISTRY
from tests.support.node_context import FakeNodeContext


def render(source: str, native: bool = False, **names: object) -> object:
    return compile_template(source, native).render(names)


def test_renders_inputs_and_outputs() -> None:
    assert render("Hello {{user_name}}", user_name="John") == "Hello John"
    assert render("AI said: {{outputs.ai1}}", outputs={"ai1": "hi"}) == "AI said: hi"


def test_native_single_expression_keeps_type() -> None:
    assert render("{{ outputs.rows }}", native=True, outputs={"rows": [1, 2]}) == [1, 2]
    assert render("{{ outputs.rows }}", native=False, outputs={"rows": [1, 2]}) == "[1, 2]"
    assert render("n={{ n }}", native=True, n=3) == "n=3"


def test_undefined_name_is_an_error_naming_it() -> None:
    with pytest.raises(TemplateFailure, match="'user_name' is undefined"):
        render("Hello {{user_name}}")
    with pytest.raises(TemplateFailure, match="'nope' is undefined"):
        compile_expression("nope").evaluate({})


def test_syntax_error_reported_at_compile_time() -> None:
    with pytest.raises(TemplateFailure, match="syntax error"):
        compile_template("{{ x ")
    with pytest.raises(TemplateFailure, match="syntax error"):
        compile_expression("value >")


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 10**9 }}",
        "{{ [1] * 10**8 }}",
        "{{ 9**(9**9) }}",
        "{{ 2**100000 }}",
        "{{ range(10**6) | list | length }}",
        "{% for a in range(5000) %}{% for b in range(5000) %}{% endfor %}{% endfor %}",
        "{{ ''.__class__.__mro__ }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{{ 'a' | center(10**9) }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x.append(1) }}",
        "{{ lipsum(10**6) }}",
    ],
)
def test_escapes_and_bombs_are_refused(source: str) -> None:
    # No wall-clock bound here: the limits themselves are what stops them (test_template_bombs).
    with pytest.raises(TemplateFailure):
        compile_template(source).render({"x": []})


def test_output_length_is_capped() -> None:
    template = compile_template("{% for i in range(9000) %}{{ 'x' * 500 }}{% endfor %}")
    with pytest.raises(TemplateFailure, match="output exceeds"):
        template.render({})


def test_expressions() -> None:
    assert compile_expression("value > 10").evaluate({"value": 11}) is True
    assert compile_expression("status == 'active'").evaluate({"status": "idle"}) is False
    assert compile_expression("len(items) + int('2')").evaluate({"items": [1]}) == 3
    assert compile_expression("now().year").evaluate({}) >= 2025


def test_compiled_once_per_source() -> None:
    assert compile_template("Hi {{ a }}") is compile_template("Hi {{ a }}")
    assert compile_expression("a > 1") is compile_expression("a > 1")


def test_has_template_syntax() -> None:
    assert has_template_syntax("x {{ y }}")
    assert has_template_syntax("{% if a %}b{% endif %}")
    assert not has_template_syntax("plain text")


# Template-related defects (issue 8) ---------------------------------------------------------


def test_truncate_and_wordwrap_filters_work() -> None:
    # Their `pass_environment` marker used to be lost by the bounding wrapper: AttributeError.
    assert render("{{ 'hello wonderful world' | truncate(9, leeway=0) }}") == "hello..."
    assert render("{{ 'aaa bbb ccc' | wordwrap(3) }}") == "aaa\nbbb\nccc"
    assert render("{{ 'aaa bbb' | wordwrap(3, wrapstring='|') }}") == "aaa|bbb"


def plan_of(nodes: list[dict[str, object]]) -> Plan:
    return build_plan(WorkflowDefinition.model_validate({"name": "wf", "nodes": nodes}), REGISTRY)


async def test_rename_targets_are_plain_field_names() -> None:
    plan = plan_of(
        [
            {
                "id": "t",
                "type": "transformer",
                "config": {
                    "transform_type": "rename",
                    "mapping": {"given_name": "given name", "id": "user-id"},
                },
            }
        ]
    )
    node = plan.nodes["t"]
    config = node.node_type.config_model.model_validate(node.spec.config)
    context = FakeNodeContext(services=cast(NodeServices, None), input={"given_name": "Ann"})
    result = await node.node_type.run(config, context)
    assert result.output == {"given name": "Ann"}


def test_rename_source_is_still_an_expression() -> None:
    with pytest.raises(WorkflowInvalid, match=r"config\.source"):
        plan_of(
            [
                {
                    "id": "t",
                    "type": "transformer",
                    "config": {"transform_type": "rename", "source": "a >", "mapping": {"a": "b"}},
                }
            ]
        )


def email_body_template(html: bool) -> Template:
    config = {
        "to": "ann@example.com",
        "body": "<p>Hi {{ name }}</p>{{ link | safe }}",
        "html": html,
    }
    (item,) = plan_of([{"id": "mail", "type": "email", "config": config}]).nodes["mail"].templates
    return item.template


def test_html_email_body_escapes_inserted_values() -> None:
    names = {"name": "<script>alert(1)</script> & co", "link": "<a href='x'>x</a>"}
    assert email_body_template(html=True).render(names) == (
        "<p>Hi &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p><a href='x'>x</a>"
    )


def test_plain_text_email_body_is_not_escaped() -> None:
    names = {"name": "<b>Ann</b> & co", "link": "<x>"}
    assert email_body_template(html=False).render(names) == "<p>Hi <b>Ann</b> & co</p><x>"
