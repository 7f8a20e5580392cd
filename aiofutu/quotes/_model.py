"""Validation-free construction for the quote models, generalised from :class:`aiofutu.Ticker`.

Models built from OpenD's messages skip validation (protobuf typed every field already); models
built by users are validated as usual. ``Ticker`` keeps its own copy of the ``__getattr__``
fallback for now; this base is the shared form the restructure can move it onto.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict

from ..models import _new, _set_dict

__all__ = ("TrustedModel", "trusted", "utc")

_M = TypeVar("_M", bound="TrustedModel")
_DEFAULTS: dict[type, dict[str, Any]] = {}


class TrustedModel(BaseModel):
    """A frozen model that can also be assembled from a plain ``__dict__`` (see :func:`trusted`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _DEFAULTS[cls] = {
            "__pydantic_fields_set__": set(cls.model_fields),
            "__pydantic_extra__": None,
            "__pydantic_private__": None,
        }

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            # A trusted instance has only ``__dict__``; pydantic's bookkeeping slots fall back to
            # what a validated model would hold.
            try:
                return _DEFAULTS[type(self)][name]
            except KeyError:
                return super().__getattr__(name)


def trusted(cls: type[_M], fields: dict[str, Any]) -> _M:
    """An instance of ``cls`` holding ``fields`` (every field, already typed), unvalidated."""
    model: _M = _new(cls)
    _set_dict(model, fields)
    return model


def utc(timestamp: float | None) -> _dt.datetime | None:
    """Unix seconds as a timezone-aware UTC datetime, as :attr:`aiofutu.Ticker.datetime`."""
    if timestamp is None:
        return None
    return _dt.datetime.fromtimestamp(timestamp, tz=_dt.timezone.utc)
