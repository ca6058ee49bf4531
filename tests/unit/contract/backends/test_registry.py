"""Each registered backend is two modules of one name: what it declares in the shared contract, and the function's
adapter. The two agree on what they share."""

from __future__ import annotations

import pytest

from lambdas.contract import backends
from lambdas.contract.backends import sagemaker
from lambdas.inference.backends import adapter, sagemaker_formats


@pytest.mark.parametrize("name", backends.REGISTERED)
def test_every_registered_backend_has_a_declaration_and_an_adapter(name):
    assert backends.spec(name).name == name
    assert callable(adapter(name))


def test_an_unknown_backend_is_named_with_the_registered_ones():
    with pytest.raises(KeyError, match="no backend 'bedrock'; registered: rekognition, sagemaker"):
        adapter("bedrock")
    with pytest.raises(KeyError, match="no backend 'bedrock'"):
        backends.spec("bedrock")


def test_the_response_formats_a_setting_accepts_are_the_ones_the_function_parses():
    assert set(sagemaker.RESPONSE_FORMATS) == set(sagemaker_formats.PARSERS)
