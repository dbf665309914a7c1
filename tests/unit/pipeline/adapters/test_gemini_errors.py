"""translate_error maps every exception google.genai.errors exports, and every transport error of
httpx2 (the SDK's default client) and httpx (its alternative), to a PipelineError."""

from __future__ import annotations

import inspect
import pickle
from types import ModuleType

import httpx
import httpx2
import pytest
from google.genai import errors

from pipeline.adapters.gemini import translate_error
from pipeline.errors import PermanentError, PipelineError, ProviderRejected, TransientError


def exported(module: ModuleType, base: type[BaseException]) -> list[type[BaseException]]:
    return sorted(
        {c for _, c in inspect.getmembers(module, inspect.isclass) if issubclass(c, base)},
        key=lambda c: c.__qualname__,
    )


GENAI_ERRORS = exported(errors, BaseException)
TRANSPORT_ERRORS = exported(httpx2, httpx2.TransportError) + exported(httpx, httpx.TransportError)


def instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, errors.APIError):
        return cls(500, {"error": {"code": 500, "message": "m", "status": "INTERNAL"}})
    return cls("boom")


def test_the_enumeration_sees_the_classes_we_know() -> None:
    names = {c.__name__ for c in GENAI_ERRORS}
    assert {"APIError", "ClientError", "ServerError", "UnknownApiResponseError"} <= names
    transport = {f"{c.__module__}.{c.__name__}" for c in TRANSPORT_ERRORS}
    assert {"httpx2.ReadTimeout", "httpx2.ConnectError", "httpx.ReadTimeout"} <= transport


@pytest.mark.parametrize("cls", GENAI_ERRORS, ids=lambda c: c.__name__)
def test_every_genai_error_is_mapped(cls: type[BaseException]) -> None:
    assert isinstance(translate_error(instance(cls)), PipelineError)


@pytest.mark.parametrize("cls", TRANSPORT_ERRORS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_transport_error_is_transient(cls: type[BaseException]) -> None:
    error = translate_error(cls("boom"))

    assert isinstance(error, TransientError)
    is_timeout = issubclass(cls, (httpx.TimeoutException, httpx2.TimeoutException))
    assert error.code == ("provider_timeout" if is_timeout else "provider_unavailable")


def client_error(code: int, message: str, status: str, **extra: object) -> errors.ClientError:
    return errors.ClientError(
        code, {"error": {"code": code, "message": message, "status": status, **extra}}
    )


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (client_error(429, "quota", "RESOURCE_EXHAUSTED"), TransientError, "provider_rate_limited"),
        (client_error(408, "slow", "DEADLINE_EXCEEDED"), TransientError, "provider_timeout"),
        (
            errors.ServerError(503, {"error": {"code": 503, "status": "UNAVAILABLE"}}),
            TransientError,
            "provider_unavailable",
        ),
        (errors.ServerError(500, {}), TransientError, "provider_unavailable"),
        (
            client_error(
                400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
            ),
            ProviderRejected,
            "provider_auth",
        ),
        (
            client_error(400, "bad", "INVALID_ARGUMENT", details=[{"reason": "API_KEY_INVALID"}]),
            ProviderRejected,
            "provider_auth",
        ),
        (client_error(401, "no", "UNAUTHENTICATED"), ProviderRejected, "provider_auth"),
        (client_error(403, "no", "PERMISSION_DENIED"), ProviderRejected, "provider_auth"),
        (
            client_error(400, "Invalid JSON payload", "INVALID_ARGUMENT"),
            ProviderRejected,
            "provider_rejected",
        ),
        (
            client_error(404, "models/x is not found", "NOT_FOUND"),
            ProviderRejected,
            "provider_rejected",
        ),
        (errors.UnknownApiResponseError("not json"), TransientError, "provider_unavailable"),
        (errors.UnsupportedFunctionError("f"), PermanentError, "analyzer_error"),
        (TimeoutError(), TransientError, "provider_timeout"),
        (ConnectionResetError(), TransientError, "provider_unavailable"),
        (KeyError("x"), PermanentError, "analyzer_error"),
    ],
)
def test_error_policy(error: BaseException, kind: type[PipelineError], code: str) -> None:
    translated = translate_error(error)

    assert type(translated) is kind
    assert translated.code == code


@pytest.mark.parametrize(
    ("status", "code"), [(429, "provider_rate_limited"), (400, "provider_auth")]
)
def test_a_pickled_client_error_maps_the_same(status: int, code: str) -> None:
    original = client_error(status, "API key not valid. Please pass a valid API key.", "X")
    revived = pickle.loads(pickle.dumps(original))
    assert type(revived) is errors.APIError  # the SDK's pickling loses the subclass

    assert translate_error(revived).code == code


def test_pipeline_errors_pass_through() -> None:
    error = TransientError("x", code="provider_timeout")

    assert translate_error(error) is error


def test_messages_hold_neither_provider_text_nor_the_key() -> None:
    secret = "AIza-secret-123"
    error = client_error(400, f"prompt echo: my card is 4111, key {secret}", "INVALID_ARGUMENT")

    message = str(translate_error(error))

    assert secret not in message
    assert "4111" not in message
    assert "400" in message
