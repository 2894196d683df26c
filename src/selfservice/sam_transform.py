"""The SAM transform (samtranslator), run offline as CloudFormation runs it.

The local deployment takes the roles it generates from it, and the deploy check lints
what it produces; both run the same translator the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from samtranslator.metrics.metrics import Metrics
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

__all__ = ["translate"]


def translate(
    body: dict[str, Any], parameter_values: Mapping[str, Any], *, region: str = "us-east-1"
) -> dict[str, Any]:
    """``body`` (a SAM template, changed in place: pass a copy) as CloudFormation.

    ``parameter_values`` are the template's parameters and the pseudo parameters the
    transform should know; every other intrinsic stays one.
    """
    # The session only supplies the Region; the translator makes no call with it.
    session = boto3.session.Session(region_name=region)
    metrics = Metrics()  # the transform counts things; kept in memory, published nowhere
    translator = Translator(None, Parser(), boto_session=session, metrics=metrics)
    translated: dict[str, Any] = translator.translate(
        body, parameter_values=dict(parameter_values), get_managed_policy_map=lambda: {}
    )
    metrics.publish()
    return translated
