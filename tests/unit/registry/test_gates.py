"""Gate policies as data: parsed and validated once (errors name file and line), and
metric rules that give the seed's `should_promote` answers."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cairn.errors import FormatError
from cairn.registry import gates

SEED_POLICY = """\
Production:
  - metric: f1
    min_improvement: 0.005
"""


def parse(text: str) -> gates.Policy:
    return gates.parse(textwrap.dedent(text), "gates.yaml")


def test_a_full_policy_is_validated_into_its_stored_form() -> None:
    policy = parse("""\
        production:
          - metric: f1
            min_improvement: 0.005
          - metric: loss
            max_regression: 0.01
            better: lower
          - require: [signature, git_clean, smoke_test]
            timeout: 30
          - approval: required
            approvers: 2
          - webhook: https://eval.example.com/check
            secret_env: EVAL_SECRET
        Staging:
          - require: signature
        aliases:
          champion:
            protected: true
            rules:
              - metric: accuracy
                min: 0.9
        """)
    production = policy.rules_for("Production")
    assert [r["kind"] for r in production] == ["metric", "metric", "require", "approval",
                                               "webhook"]
    assert production[1] == {"kind": "metric", "metric": "loss", "max_regression": 0.01,
                             "better": "lower", "line": 4}
    assert production[2]["require"] == ["signature", "git_clean", "smoke_test"]
    assert (production[2]["timeout"], production[3]["approvers"]) == (30.0, 2)
    assert production[4]["timeout"] == gates.WEBHOOK_TIMEOUT
    assert policy.rules_for("Staging")[0]["require"] == ["signature"]
    assert policy.rules_for("@champion")[0]["min"] == 0.9
    assert policy.rules_for("Archived") == [] and policy.rules_for("@other") == []
    assert policy.protected_aliases == ["champion"] and policy.is_protected("champion")
    assert gates.Policy.from_document(policy.document, 3).rules_for("Production") == production


@pytest.mark.parametrize(("text", "line", "message"), [
    ("Production:\n  - metric: f1\n    min_improvment: 0.1\n", 3,
     "unknown option 'min_improvment' for a metric rule"),
    ("Production:\n  - metric: f1\n", 2, "needs one of min, max, min_improvement"),
    ("Production:\n  - metric: f1\n    min: high\n", 3, "min must be a number, not 'high'"),
    ("Production:\n  - metric: f1\n    min: .nan\n", 3, "min must be a number"),
    ("Production:\n  - metric: f1\n    min_improvement: -1\n", 3, "must be 0 or more"),
    ("Production:\n  - metric: f1\n    min: 1\n    better: more\n", 4,
     "better must be higher or lower"),
    ("Production:\n  - require: [signature, tests_pass]\n", 2,
     "unknown requirement 'tests_pass'"),
    ("Production:\n  - eval: \"__import__('os').system('x')\"\n", 2, "unknown rule 'eval'"),
    ("Production:\n  - approval: yes\n", 2, "approval takes one value: required"),
    ("Production:\n  - approval: required\n    approvers: 0\n", 3, "approvers must be"),
    ("Production:\n  - webhook: ftp://x\n", 2, "http:// or https:// URL"),
    ("Production:\n  - webhook: http://x\n    timeout: 0\n", 3, "timeout must be seconds"),
    ("Production:\n  - webhook: http://x\n    secret_env: s3cr3t value\n", 3,
     "secret_env must name an environment variable"),
    ("Production:\n  - metric: f1\n    min: 1\n    require: signature\n", 2,
     "exactly one of metric, require, approval, webhook"),
    ("Live:\n  - require: signature\n", 1, "unknown stage 'Live'"),
    ("Production:\n  require: signature\n", 2, "must be a list of rules"),
    ("Production:\n  - require: signature\nproduction:\n  - require: signature\n", 3,
     "stage Production is given twice"),
    ("aliases:\n  champion:\n    protected: maybe\n", 3, "protected must be true or false"),
    ("aliases:\n  champion:\n    guarded: true\n", 3, "unknown key 'guarded'"),
    ("Production:\n  - metric: f1\n   min: 1\n", 3, "fix the YAML"),
    ("", 1, "the policy is empty"),
    ("- Production\n", 1, "the policy must be a mapping"),
])
def test_a_bad_policy_is_one_error_naming_file_and_line(text: str, line: int,
                                                         message: str) -> None:
    with pytest.raises(FormatError) as caught:
        gates.parse(text, "ci/gates.yaml")
    assert str(caught.value).startswith(f"ci/gates.yaml:{line}: ")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_metric_bounds_and_their_verdicts() -> None:
    rule = parse("""\
        Production:
          - metric: accuracy
            min: 0.9
            max: 0.99
            max_regression: 0.01
        """).rules_for("Production")[0]
    verdicts = gates.metric_verdicts(rule, {"accuracy": 0.95}, {"accuracy": 0.97}, "v2")
    assert [(v.rule, v.expected, v.actual, v.passed) for v in verdicts] == [
        ("accuracy min", ">= 0.9", "0.95", True),
        ("accuracy max", "<= 0.99", "0.95", True),
        ("accuracy max_regression", ">= v2 0.97 - 0.01", "0.95", False)]


def test_lower_is_better_turns_the_comparisons_round() -> None:
    rule = parse("Production:\n  - metric: loss\n    min_improvement: 0.1\n"
                 "    better: lower\n").rules_for("Production")[0]
    assert gates.metric_verdicts(rule, {"loss": 0.3}, {"loss": 0.5}, "v1")[0].passed
    assert not gates.metric_verdicts(rule, {"loss": 0.45}, {"loss": 0.5}, "v1")[0].passed


def test_a_missing_metric_is_a_failing_verdict_that_says_so() -> None:
    rule = parse(SEED_POLICY).rules_for("Production")[0]
    (missing,) = gates.metric_verdicts(rule, {"accuracy": 1.0}, {"f1": 0.9}, "v1")
    assert not missing.passed and missing.actual == "the run logged no metric 'f1'"
    (holder_lacks,) = gates.metric_verdicts(rule, {"f1": 0.95}, {"accuracy": 0.9}, "v1")
    assert not holder_lacks.passed and "v1 has no metric 'f1'" in holder_lacks.actual
    (nothing_held,) = gates.metric_verdicts(rule, {"f1": 0.1}, None, "Production")
    assert nothing_held.passed and nothing_held.expected == "no Production to compare with"


def seed_should_promote(candidate_f1: float, prod_f1: float | None) -> bool:
    """The seed article's function, on the two numbers it reads."""
    if prod_f1 is None:
        return True  # No production model yet
    return candidate_f1 > prod_f1 + 0.005


f1s = st.floats(min_value=0, max_value=1, allow_nan=False)


@given(candidate=f1s, prod=st.one_of(st.none(), f1s, f1s.map(lambda f: f - 0.005)))
def test_the_seed_policy_answers_as_the_seed_function(candidate: float,
                                                      prod: float | None) -> None:
    rule = parse(SEED_POLICY).rules_for("Production")[0]
    (verdict,) = gates.metric_verdicts(rule, {"f1": candidate},
                                       None if prod is None else {"f1": prod}, "v1")
    assert verdict.passed == seed_should_promote(candidate, prod)


def test_the_improvement_threshold_is_strict_as_in_the_seed() -> None:
    rule = parse(SEED_POLICY).rules_for("Production")[0]
    (at_threshold,) = gates.metric_verdicts(rule, {"f1": 0.5 + 0.005}, {"f1": 0.5}, "v1")
    assert not at_threshold.passed
