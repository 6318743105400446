"""Errors of the object API, shaped like the Kubernetes API server's.

The tree (whose fault it is in brackets)::

    ApiError                 [base: carries code, reason, resource and name]
    ├── BadRequest           [the caller's: a malformed argument, selector or patch]
    ├── Forbidden            [the caller's: allowed in general, refused for this object now]
    ├── NotFound             [the caller's or a race: no such object]
    ├── AlreadyExists        [a race or the caller's: the name is taken]
    ├── Conflict             [a race: the object changed since it was read; read and retry]
    ├── Invalid              [the caller's: the object breaks a rule; ``causes`` lists each one]
    └── Gone                 [time's: the resource version was compacted away; relist]

Messages read like kubectl's (``deployments.apps "web" not found``). Errors
of the store itself (``kvstore.errors.Unavailable``, ``Timeout``...) pass
through unchanged: they say nothing about the object.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AlreadyExists",
    "ApiError",
    "BadRequest",
    "Conflict",
    "FieldError",
    "FieldErrorType",
    "Forbidden",
    "Gone",
    "Invalid",
    "NotFound",
]


class FieldErrorType(str, enum.Enum):
    """Why a field is wrong (Kubernetes' ``field.ErrorType``)."""

    REQUIRED = "Required value"
    INVALID = "Invalid value"
    NOT_SUPPORTED = "Unsupported value"
    DUPLICATE = "Duplicate value"
    FORBIDDEN = "Forbidden"
    TOO_LONG = "Too long"
    TYPE_INVALID = "Invalid type"
    IMMUTABLE = "Immutable"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad field: its path (``spec.containers[0].image``), why, the value and a detail."""

    type: FieldErrorType
    field: str
    detail: str = ""
    value: Any = None

    def __str__(self) -> str:
        if self.type in (FieldErrorType.INVALID, FieldErrorType.NOT_SUPPORTED,
                         FieldErrorType.DUPLICATE, FieldErrorType.TYPE_INVALID):
            head = f"{self.field}: {self.type.value}: {_show(self.value)}"
        elif self.type is FieldErrorType.IMMUTABLE:
            head = f"{self.field}: Invalid value: field is immutable"
        else:
            head = f"{self.field}: {self.type.value}"
        return f"{head}: {self.detail}" if self.detail else head


def _show(value: Any) -> str:
    """``value`` as Kubernetes prints it in a field error (JSON-like)."""
    try:
        return json.dumps(value, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return repr(value)


class ApiError(Exception):
    """Base class of every error the object API raises on purpose.

    ``code`` is the HTTP status the Kubernetes API server would answer with,
    ``reason`` its ``StatusReason``; ``resource`` is the group-qualified
    resource (``deployments.apps``) and ``name`` the object's name, when known.
    """

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, resource: str = "", name: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource
        self.name = name


class BadRequest(ApiError):
    """The request itself is malformed (a bad selector, patch, token or argument)."""

    code = 400
    reason = "BadRequest"

    def __init__(self, message: str, *, resource: str = "", name: str = "") -> None:
        super().__init__(message, resource=resource, name=name)


class Forbidden(ApiError):
    """The request is refused for this object now (e.g. creating in a terminating namespace)."""

    code = 403
    reason = "Forbidden"

    def __init__(self, resource: str, name: str, detail: str) -> None:
        super().__init__(f'{resource} "{name}" is forbidden: {detail}', resource=resource, name=name)
        self.detail = detail


class NotFound(ApiError):
    """No object of this resource has this name."""

    code = 404
    reason = "NotFound"

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f'{resource} "{name}" not found', resource=resource, name=name)


class AlreadyExists(ApiError):
    """An object of this resource already has this name."""

    code = 409
    reason = "AlreadyExists"

    def __init__(self, resource: str, name: str) -> None:
        super().__init__(f'{resource} "{name}" already exists', resource=resource, name=name)


class Conflict(ApiError):
    """The object changed since the caller read it (a stale resourceVersion or uid)."""

    code = 409
    reason = "Conflict"

    def __init__(self, resource: str, name: str, detail: str = "") -> None:
        detail = detail or (
            "the object has been modified; please apply your changes to the latest "
            "version and try again"
        )
        super().__init__(
            f'Operation cannot be fulfilled on {resource} "{name}": {detail}',
            resource=resource,
            name=name,
        )
        self.detail = detail


class Invalid(ApiError):
    """The object breaks one or more rules; ``causes`` holds every one of them."""

    code = 422
    reason = "Invalid"

    def __init__(self, kind: str, name: str, causes: Sequence[FieldError]) -> None:
        self.causes: tuple[FieldError, ...] = tuple(causes)
        parts = [str(c) for c in self.causes]
        listed = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
        super().__init__(f'{kind} "{name}" is invalid: {listed}', resource=kind, name=name)
        self.kind = kind

    def fields(self) -> list[str]:
        """The path of each bad field, in the order found."""
        return [c.field for c in self.causes]


class Gone(ApiError):
    """The requested resource version is older than the store keeps; list again."""

    code = 410
    reason = "Expired"

    def __init__(self, message: str, *, resource: str = "") -> None:
        super().__init__(message, resource=resource)
