"""What every wire type shares: camelCase JSON, and text PostgreSQL can store."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

# PostgreSQL `text` cannot hold NUL, and UTF-8 cannot hold a lone surrogate (which JSON's
# `\ud800` escapes can produce): refused here as 422 rather than failing in the driver.
NO_NUL = r"^[^\x00]*$"


class WireModel(BaseModel):
    """A request or response body; reads either spelling, writes camelCase (CONTRACT.md)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        from_attributes=True,
        frozen=True,
    )


def _encodable(value: str) -> str:
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from exc
    return value


_Storable = AfterValidator(_encodable)

# A name or title: one line's worth, never empty.
Title = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL), _Storable]
# A description or proposal.
Description = Annotated[str, Field(max_length=10_000, pattern=NO_NUL), _Storable]
# A lesson's content.
Content = Annotated[str, Field(max_length=100_000, pattern=NO_NUL), _Storable]
