"""Promotion gates from Python: the seed's `should_promote`, in one call.

    import cairn.gates

    verdict = cairn.gates.should_promote(run_id, "fraud-detector")  # stage="Production"
    if verdict:
        client.transition_model_version_stage("fraud-detector", version, "Production")
    else:
        print("\\n".join(verdict.reasons))

The rules are the model's gate policy (`cairn models gates set NAME gates.yaml`); the
same ones decide every promotion, so what `should_promote` says is what promoting does.
"""

from __future__ import annotations

from cairn.errors import ApprovalPending, GateRefused
from cairn.registry.gates import GateResult, Verdict

__all__ = ["ApprovalPending", "GateRefused", "GateResult", "Verdict", "check",
           "should_promote"]


def should_promote(run_id: str, model_name: str, stage: str = "Production") -> GateResult:
    """The gates' verdict on the model of run `run_id` entering `stage` of `model_name`:
    truthy when every rule passes, `.reasons` saying why; nothing is promoted."""
    from cairn.commands.models import should_promote as evaluate

    return evaluate(run_id=run_id, name=model_name, stage=stage)


def check(model_name: str, version: int | str, stage: str = "Production") -> GateResult:
    """The gates' verdict on a registered version entering `stage` (or "@alias")."""
    from cairn.commands.models import check_gates

    return check_gates(name=model_name, version=version, target=stage)
